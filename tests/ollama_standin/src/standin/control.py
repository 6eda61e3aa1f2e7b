"""Run-time knobs of the stand-in (test-only behaviour, invisible to the deploying roles).

Knobs come from a JSON control file, re-read on every request, whose path is
$OLLAMA_STANDIN_CONTROL (default /etc/ollama-standin/control.json).  An absent
file means "no overrides".  The same knobs can be given as environment
variables OLLAMA_STANDIN_<KNOB IN UPPER CASE>; they are the defaults the
control file overrides.
"""

import json
import os
from typing import Any, Dict, List

DEFAULT_CONTROL_PATH = "/etc/ollama-standin/control.json"

FAULTS = ("none", "hang", "http500", "crash")
SIGTERM_MODES = ("close", "drain")
INFERENCE_PATHS = ["/api/generate", "/api/chat", "/v1/chat/completions"]

DEFAULTS: Dict[str, Any] = {
    "first_token_ms": 0,  # extra delay before the first generated token
    "tokens_per_second": 0,  # generation rate; 0 = as fast as possible
    "load_ms": 0,  # time to "load" a model that is not loaded yet
    "fault": "none",  # none | hang | http500 | crash
    "fault_paths": INFERENCE_PATHS,  # request paths the fault applies to
    "sigterm": "close",  # close = like real Ollama (drop connections); drain = finish in-flight requests
    "thinking_tokens": 32,  # thinking tokens a thinking model streams before its answer
    "vram_fraction": 0.0,  # share of a loaded model /api/ps reports in GPU memory (0 = 100% CPU, 1 = 100% GPU)
}


def _coerce(key: str, value: Any) -> Any:
    if key in ("first_token_ms", "tokens_per_second", "load_ms"):
        return max(float(value), 0.0)
    if key == "thinking_tokens":
        return max(int(value), 0)
    if key == "vram_fraction":
        return min(max(float(value), 0.0), 1.0)
    if key == "fault_paths":
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return [str(p) for p in value]
    value = str(value).strip().lower()
    allowed = FAULTS if key == "fault" else SIGTERM_MODES
    if value not in allowed:
        raise ValueError("%s must be one of %s" % (key, ", ".join(allowed)))
    return value


def control_path() -> str:
    return os.environ.get("OLLAMA_STANDIN_CONTROL", DEFAULT_CONTROL_PATH)


def current() -> Dict[str, Any]:
    """Defaults, then OLLAMA_STANDIN_* environment, then the control file."""
    knobs = dict(DEFAULTS)
    for key in DEFAULTS:
        raw = os.environ.get("OLLAMA_STANDIN_" + key.upper())
        if raw not in (None, ""):
            knobs[key] = _coerce(key, raw)
    try:
        with open(control_path(), "rb") as f:
            overrides = json.load(f)
    except (OSError, ValueError):
        overrides = {}
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            if key in DEFAULTS:
                try:
                    knobs[key] = _coerce(key, value)
                except (TypeError, ValueError):
                    continue
    return knobs


def fault_for(path: str, knobs: Dict[str, Any]) -> str:
    paths: List[str] = knobs["fault_paths"]
    if knobs["fault"] != "none" and any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths):
        return knobs["fault"]
    return "none"
