#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""Service-level metrics of this node's Ollama, written for node exporter's textfile collector.

Run by the ollama-metrics timer (role ollama_metrics) every interval: one bounded probe of the
node's own API, then the metrics file is replaced atomically (a temporary file in the same
directory, renamed over the old one), so node exporter never reads half a file.

Nothing is measured here: the timed chat requests, /api/version and /api/ps come from the
collection's module ollama_verify_probe.py (the deploy gate's code) and the pin rule (name@digest
in /api/tags) from plugins/module_utils (names.py, digests.py). The role ships those files next to
this one; run from a checkout, the script finds them in the repository. Stdlib only, Python 3.6+.

Usage: ollama_metrics.py --config FILE         probe and write the metrics file
       ollama_metrics.py --check-config FILE   check a configuration (the role's validate step)
"""

import argparse
import calendar
import importlib.util
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))

# name -> where the role installs it (next to this file), then where it lives in a checkout.
SHARED = {
    # The probe imports golden.py (found in sys.modules, registered first by collect()).
    "golden": ("golden.py", "plugins/module_utils/golden.py"),
    "ollama_verify_probe": ("ollama_verify_probe.py", "plugins/modules/ollama_verify_probe.py"),
    "names": ("names.py", "plugins/module_utils/names.py"),
    # digests.py imports names.py (found in sys.modules, registered first).
    "digests": ("digests.py", "plugins/module_utils/digests.py"),
    "textfile": ("textfile.py", "plugins/module_utils/textfile.py"),
}

REQUIRED = {"url": str, "model": str, "requests": int, "timeout_s": (int, float), "textfile": str}
OPTIONAL = {"prompt": str, "num_predict": int, "keep_alive": str, "think": str, "pinned_models": list,
            "nvidia_smi": str}
GPU_FIELDS = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu"
MIB = 1024 * 1024


def shared(name):
    """Import one of the shared files by path (installed copy first, then the repository's)."""
    if name in sys.modules:
        return sys.modules[name]
    installed, in_repo = SHARED[name]
    for path in (os.path.join(HERE, installed), os.path.join(REPO, in_repo)):
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
            return module
    raise ImportError("%s not found next to %s nor in the repository" % (installed, __file__))


def check_config(config):
    """Problems of a configuration dict (empty when usable)."""
    problems = []
    for key, kind in REQUIRED.items():
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            problems.append("%s is missing or not a %s" % (key, getattr(kind, "__name__", "number")))
    for key, kind in OPTIONAL.items():
        if key in config and not isinstance(config[key], kind):
            problems.append("%s must be a %s" % (key, kind.__name__))
    if not problems:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", config["url"]):
            problems.append("url must be an http(s) URL")
        if config["requests"] < 1 or config["timeout_s"] <= 0:
            problems.append("requests must be >= 1 and timeout_s > 0")
        if not os.path.isabs(config["textfile"]) or not config["textfile"].endswith(".prom"):
            problems.append("textfile must be an absolute path ending in .prom")
        for pin in config.get("pinned_models", []):
            if not isinstance(pin, dict) or not pin.get("name") or not pin.get("digest"):
                problems.append("each pinned model needs a name and a digest")
    return problems


# -- collection ---------------------------------------------------------------------------------


def query_gpus(nvidia_smi, timeout_s=10):
    """GPUs as nvidia-smi reports them: None without nvidia-smi (no GPU host); raises OSError or
    subprocess errors when it is there but fails."""
    if not nvidia_smi or not os.path.isfile(nvidia_smi):
        return None
    out = subprocess.run([nvidia_smi, "--query-gpu=" + GPU_FIELDS, "--format=csv,noheader,nounits"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s, check=True)
    gpus = []
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 6:
            continue
        gpus.append(dict(zip(("index", "name", "utilization", "memory_used", "memory_total", "temperature"), cells)))
    return gpus


_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$")


def parse_time(text):
    """Seconds since the epoch of an RFC 3339 time as Ollama writes expires_at (nanoseconds, any
    offset); None when it is not one. Python 3.6 has no datetime.fromisoformat."""
    match = _TIME.match(str(text or "").strip())
    if not match:
        return None
    y, mo, d, h, mi, s, frac, zone = match.groups()
    seconds = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    if frac:
        seconds += float("0." + frac)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


def collect(config, clock=time.time):
    """Everything the metrics file reports, as plain data (render() formats it)."""
    shared("golden")
    probe = shared("ollama_verify_probe")
    names = shared("names")
    digests = shared("digests")
    started = clock()
    params = {"url": config["url"], "model": config["model"], "requests": config["requests"],
              "timeout_s": float(config["timeout_s"]), "prompt": config.get("prompt", "Hello"),
              "keep_alive": config.get("keep_alive", ""), "num_predict": config.get("num_predict", 0),
              "think": config.get("think", "false"), "ttft_p95_limit_s": float(config["timeout_s"]),
              "target": "", "kind": "node", "require_gpu": False}
    result = probe.run(params)
    data = {"model": names.model_name(config["model"]), "probe": result,
            "up": not result["version"].startswith("<"), "tags": None, "ps": None, "gpus": None, "gpu_error": None}
    for key, path in (("tags", "/api/tags"), ("ps", "/api/ps")):
        try:
            data[key] = probe.api_json(config["url"], path, float(config["timeout_s"]))
        except (OSError, ValueError, probe.ProbeError):
            data[key] = None
    pins = config.get("pinned_models", [])
    unmet = set(digests.unmet_pins(pins, data["tags"])) if data["tags"] is not None else None
    data["pins"] = []
    for pin in pins:
        # The filter's own spelling of the pin (name with its tag, 64-hex digest), never re-derived here.
        key = digests.unmet_pins([pin], {})[0]
        name, digest = key.rsplit("@", 1)
        data["pins"].append({"model": name, "digest": digest, "present": None if unmet is None else key not in unmet})
    try:
        data["gpus"] = query_gpus(config.get("nvidia_smi", ""))
    except (OSError, subprocess.SubprocessError) as exc:
        data["gpu_error"] = str(exc) or exc.__class__.__name__
    data["duration_s"] = clock() - started
    data["finished_at"] = clock()
    return data


# -- rendering ----------------------------------------------------------------------------------


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(text):
    """A float from an nvidia-smi cell; None for [N/A], [Not Supported] and the like."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class Text:
    """Prometheus text exposition format, HELP and TYPE once per metric, all gauges."""

    def __init__(self):
        self.lines = []
        self.seen = set()

    def add(self, *metric, **labels):
        """add(name, help, value, label=value...): a label may be called `name` (a GPU's model)."""
        name, help_text, value = metric
        if value is None:
            return
        if name not in self.seen:
            self.seen.add(name)
            self.lines.append("# HELP %s %s" % (name, help_text))
            self.lines.append("# TYPE %s gauge" % name)
        text = ",".join('%s="%s"' % (k, _label(v)) for k, v in sorted(labels.items()))
        value = float(value)
        shown = repr(value) if value != int(value) else "%d" % value
        self.lines.append("%s%s %s" % (name, "{%s}" % text if text else "", shown))

    def __str__(self):
        return "\n".join(self.lines) + "\n"


def render(data):
    """The metrics file's text for the data collect() returned."""
    out = Text()
    stats, model = data["probe"], data["model"]
    out.add("ollama_up", "1 when the node's own API answered /api/version in the last probe.", 1 if data["up"] else 0)
    if data["up"]:
        out.add("ollama_build_info", "The Ollama version the node's API reports (value always 1).", 1, version=stats["version"])
    out.add("ollama_probe_requests", "Timed streamed /api/chat requests in the last probe.", stats["requests"], model=model)
    out.add("ollama_probe_errors", "Requests of the last probe that failed, timed out or had no visible content.",
            stats["errors"], model=model)
    out.add("ollama_probe_success", "1 when every request of the last probe answered with visible content.",
            1 if stats["errors"] == 0 and stats["requests"] > 0 else 0, model=model)
    out.add("ollama_probe_first_token_seconds",
            "Seconds from opening the connection to the first chunk with visible message.content (p95 of the last probe's requests).",
            stats["ttft_p95_s"], model=model)
    out.add("ollama_probe_total_seconds", "Seconds from opening the connection to the final chunk (p95 of the last probe's requests).",
            stats["total_p95_s"], model=model)
    out.add("ollama_probe_tokens_per_second", "Server-reported generation rate of the last probe (median).",
            stats["tokens_per_s"], model=model)
    out.add("ollama_probe_duration_seconds", "Wall time of the whole last probe run.", data["duration_s"])
    out.add("ollama_probe_last_run_timestamp_seconds", "When the last probe finished (seconds since the epoch).",
            data["finished_at"])
    for pin in data["pins"]:
        if pin["present"] is not None:
            out.add("ollama_pinned_model_present", "1 when /api/tags lists the pinned model at its pinned manifest digest.",
                    1 if pin["present"] else 0, model=pin["model"], digest=pin["digest"])
    gpu = stats.get("gpu") or {}
    if data["ps"] is not None:
        out.add("ollama_model_loaded", "1 when /api/ps lists the served model after the probe.", 1 if gpu.get("loaded") else 0,
                model=model)
        if gpu.get("loaded") and gpu.get("size"):
            out.add("ollama_model_vram_ratio", "Share of the served model in GPU memory (size_vram / size from /api/ps; 1 = wholly).",
                    float(gpu["size_vram"]) / gpu["size"], model=model)
        for entry in data["ps"].get("models") or []:
            name = entry.get("name") or entry.get("model") or "?"
            out.add("ollama_loaded_model_size_bytes", "Memory a loaded model takes (size from /api/ps).", entry.get("size"), model=name)
            out.add("ollama_loaded_model_vram_bytes", "Part of a loaded model in GPU memory (size_vram from /api/ps).",
                    entry.get("size_vram", 0), model=name)
            out.add("ollama_loaded_model_expiry_timestamp_seconds", "When Ollama unloads the model (expires_at from /api/ps).",
                    parse_time(entry.get("expires_at")), model=name)
    if data["gpu_error"] is not None:
        out.add("ollama_gpu_query_success", "1 when nvidia-smi answered; absent on a host without nvidia-smi.", 0)
    elif data["gpus"] is not None:
        out.add("ollama_gpu_query_success", "1 when nvidia-smi answered; absent on a host without nvidia-smi.", 1)
    out.add("ollama_gpu_count", "GPUs nvidia-smi reports (0 on a host without nvidia-smi).", len(data["gpus"] or []))
    for entry in data["gpus"] or []:
        labels = {"gpu": entry["index"], "name": entry["name"]}
        utilization = _number(entry["utilization"])
        out.add("ollama_gpu_utilization_ratio", "GPU utilisation over the last sample period (0-1, nvidia-smi utilization.gpu).",
                None if utilization is None else utilization / 100.0, **labels)
        for key, name, text in (("memory_used", "ollama_gpu_memory_used_bytes", "GPU memory in use (nvidia-smi memory.used)."),
                                ("memory_total", "ollama_gpu_memory_total_bytes", "GPU memory in all (nvidia-smi memory.total).")):
            mib = _number(entry[key])
            out.add(name, text, None if mib is None else mib * MIB, **labels)
        out.add("ollama_gpu_temperature_celsius", "GPU core temperature (nvidia-smi temperature.gpu).",
                _number(entry["temperature"]), **labels)
    return str(out)


def write_atomic(path, text):
    """Replace path with text atomically (textfile.write_atomic, shared with the front's export)."""
    shared("textfile").write_atomic(path, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="probe and write the metrics file")
    group.add_argument("--check-config", help="check a configuration file and exit")
    args = parser.parse_args(argv)
    path = args.config or args.check_config
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        print("ollama_metrics: cannot read %s: %s" % (path, exc), file=sys.stderr)
        return 2
    problems = check_config(config) if isinstance(config, dict) else ["the configuration is not a JSON object"]
    if problems:
        print("ollama_metrics: %s: %s" % (path, "; ".join(problems)), file=sys.stderr)
        return 2
    if args.check_config:
        return 0
    # An unreachable or failing Ollama is a measurement (ollama_up 0, errors), not a failure here.
    write_atomic(config["textfile"], render(collect(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
