"""Helpers shared by the stand-in tests (imported by conftest.py and test modules)."""

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from typing import Dict

HERE = os.path.dirname(os.path.abspath(__file__))

VERSION = "0.33.0"
OLD_VERSION = "0.32.15"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, os.path.join(HERE, name), *args], capture_output=True, text=True, check=True)
    return proc.stdout


def build_release(version: str, out: str, fail_start: bool = False) -> str:
    run_script("build_release.py", "--version", version, "--out", out, *(["--fail-start"] if fail_start else []))
    return out


def unpack(archive: str, dest: str) -> str:
    os.makedirs(dest, exist_ok=True)
    if archive.endswith(".tar.zst"):
        import zstandard

        with open(archive, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                tar.extractall(dest)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(dest)
    return os.path.join(dest, "bin", "ollama")


def build_model(out: str, name: str = "qwen3:4b", *extra: str) -> Dict:
    lines = run_script("build_model.py", "--name", name, "--out", out, *extra).splitlines()
    summary = json.loads(lines[1])
    assert summary["digest"] == lines[0]
    return summary




def wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)
