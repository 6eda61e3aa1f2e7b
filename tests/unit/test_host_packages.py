"""Host prerequisites are installed once, before anything runs in parallel: the image builds
never call apt-get (two at once fail on the dpkg lock, as they did on a fresh machine)."""

from __future__ import annotations

import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def stub_bin(tmp_path: pathlib.Path, **scripts: str) -> pathlib.Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
    return bin_dir


def run_with(bin_dir: pathlib.Path, *cmd: str) -> subprocess.CompletedProcess:
    # Only the stubs and the basic tools: debootstrap, dockerd and apt-get live in /usr/sbin or are
    # stubbed, so this is a machine that never had debootstrap.
    path = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(list(cmd), cwd=ROOT, env={"PATH": path, "HOME": os.environ.get("HOME", "/root")},
                          capture_output=True, text=True, timeout=60)


def test_image_build_without_debootstrap_stops_at_once_and_never_calls_apt(tmp_path):
    log = tmp_path / "calls"
    bin_dir = stub_bin(
        tmp_path,
        docker="exit 1",  # no image is present: both would have to be built
        **{"apt-get": f"echo apt-get \"$@\" >>{log}; exit 0"},
    )
    run = run_with(bin_dir, "bash", "tests/images/build.sh")
    assert run.returncode != 0
    assert "run scripts/host-packages.sh first" in run.stderr
    assert not log.exists(), f"build.sh called apt-get: {log.read_text()}"


def test_only_host_packages_installs_host_packages():
    for path in list((ROOT / "scripts").glob("*.sh")) + list((ROOT / "tests/images").glob("*.sh")) + [ROOT / ".ci/run"]:
        if path.name == "host-packages.sh":
            continue
        assert "apt-get install" not in path.read_text(), f"{path.relative_to(ROOT)} installs packages itself"
