"""promtool for the tests, from Debian's `prometheus` package (no other source is reachable where
the tests run): promtool on PATH if there is one, else usr/bin/promtool extracted once into
.cache/promtool/ from `apt-get download prometheus` (no install, no root needed beyond apt's
cache). Tests skip, saying why, when neither works (e.g. no apt index: run `apt-get update`)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "promtool"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    extracted = CACHE / "usr" / "bin" / "promtool"
    if extracted.is_file():
        return str(extracted)
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.skip("promtool: not on PATH, and no apt-get/dpkg-deb to take it from Debian's prometheus package")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp, capture_output=True, text=True, timeout=300, check=False)
        debs = list(pathlib.Path(tmp).glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            pytest.skip("promtool: `apt-get download prometheus` failed (is the apt index there? apt-get update): "
                        + (got.stderr.strip().splitlines() or ["no .deb"])[-1])
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(CACHE)], check=True, timeout=300)
    for path in CACHE.rglob("*"):  # keep promtool only (the package also holds the server, ~90 MB)
        if path.is_file() and path != extracted:
            path.unlink()
    return str(extracted)
