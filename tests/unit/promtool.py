"""promtool for the tests: on PATH, else where scripts/host-packages.sh extracts it from Debian's
`prometheus` package (.cache/promtool/usr/bin/promtool; scripts/test.sh runs it before the unit
stage). The tests never download anything themselves. Without promtool they skip, saying how to
get it, on a developer's machine, and fail under CI (CI=true), where a skip would hide that the
alert rules went unchecked."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def extracted() -> pathlib.Path:
    return pathlib.Path(os.environ.get("OLLAMA_FLEET_CACHE", ROOT / ".cache")) / "promtool" / "usr" / "bin" / "promtool"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.access(extracted(), os.X_OK):
        return str(extracted())
    message = f"promtool: not on PATH nor at {extracted()}: run scripts/host-packages.sh"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
