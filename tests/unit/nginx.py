"""nginx for the tests: installed (on PATH or /usr/sbin), else where scripts/host-packages.sh
extracts it from Debian's `nginx` and `nginx-common` packages (.cache/nginx/usr/sbin/nginx and
.cache/nginx/etc/nginx/mime.types; scripts/test.sh runs it before the unit stage). The tests never
download anything themselves. Without nginx they skip, saying how to get it, on a developer's
machine, and fail under CI (CI=true), where a skip would hide that the mirror's nginx config went
unserved and unvalidated."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def extracted() -> pathlib.Path:
    return pathlib.Path(os.environ.get("OLLAMA_FLEET_CACHE", ROOT / ".cache")) / "nginx"


def installed() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)


def nginx() -> dict:
    """{binary, bin_dir (for PATH: the role's validate command calls `nginx`), mime_types, modules}."""
    found = installed()
    if found and os.path.isfile("/etc/nginx/mime.types"):
        return {"binary": found, "bin_dir": os.path.dirname(found), "mime_types": "/etc/nginx/mime.types",
                "modules": "/etc/nginx/modules-enabled/*.conf"}
    binary, mime = extracted() / "usr" / "sbin" / "nginx", extracted() / "etc" / "nginx" / "mime.types"
    if os.access(binary, os.X_OK) and mime.is_file():
        return {"binary": str(binary), "bin_dir": str(binary.parent), "mime_types": str(mime),
                "modules": str(extracted() / "etc" / "nginx" / "modules-enabled") + "/*.conf"}
    message = f"nginx: not installed nor at {binary} (with {mime}): run scripts/host-packages.sh"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
