"""Fixtures for the ollama stand-in contract tests.

The release archive is built once per session and unpacked; every server under
test is the unpacked bin/ollama, so the archive itself is what gets tested.
Everything binds and talks to 127.0.0.1 only.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional

import httpx
import ollama
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "src"))
sys.path.insert(0, HERE)

from standin_helpers import VERSION, build_model, build_release, free_port, run_script, unpack, wait_port  # noqa: E402


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory) -> str:
    return build_release(VERSION, str(tmp_path_factory.mktemp("release")))


@pytest.fixture(scope="session")
def ollama_bin(release_dir, tmp_path_factory) -> str:
    return unpack(os.path.join(release_dir, "ollama-linux-amd64.tgz"), str(tmp_path_factory.mktemp("install")))


@pytest.fixture(scope="session")
def seed_models(tmp_path_factory) -> Dict:
    out = str(tmp_path_factory.mktemp("seed-models"))
    summary = build_model(out)
    summary["dir"] = out
    return summary


class Standin:
    """A running `ollama serve` from the unpacked archive."""

    def __init__(self, binary: str, models: str, control: str, env: Dict[str, str]) -> None:
        self.binary = binary
        self.models = models
        self.control = control
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.host
        self.env = dict(os.environ)
        self.env.update({"OLLAMA_HOST": self.host, "OLLAMA_MODELS": models, "OLLAMA_STANDIN_CONTROL": control, "HOME": models})
        self.env.update(env)
        self.log_path = models + ".log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Standin":
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("stand-in exited: " + self.log())
            time.sleep(0.05)
        raise RuntimeError("stand-in did not start: " + self.log())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def set_control(self, **knobs) -> None:
        with open(self.control, "w") as f:
            json.dump(knobs, f)

    def client(self) -> ollama.Client:
        return ollama.Client(host=self.url)

    def cli(self, *args: str, stdin: str = "", env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([self.binary, *args], env=e, input=stdin, capture_output=True, text=True, timeout=30)


def _factory(ollama_bin: str, seed_models: Dict, base) -> Iterator:
    started: List[Standin] = []

    def make(env: Optional[Dict[str, str]] = None, seed: bool = True, binary: Optional[str] = None) -> Standin:
        models = os.path.join(str(base), "models%d" % len(started))
        if seed:
            shutil.copytree(seed_models["dir"], models)
        else:
            os.makedirs(models)
        s = Standin(binary or ollama_bin, models, os.path.join(str(base), "control%d.json" % len(started)), env or {})
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def make_standin(ollama_bin, seed_models, tmp_path) -> Iterator:
    """Factory of fresh servers, each with its own copy of the seed models."""
    yield from _factory(ollama_bin, seed_models, tmp_path)


@pytest.fixture
def standin(make_standin) -> Standin:
    return make_standin()


@pytest.fixture(scope="module")
def shared_standin(ollama_bin, seed_models, tmp_path_factory) -> Iterator[Standin]:
    """One server per test module, for tests that do not change its state."""
    for make in _factory(ollama_bin, seed_models, tmp_path_factory.mktemp("shared")):
        yield make()


@pytest.fixture(scope="module")
def http(shared_standin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_standin.url, timeout=10) as c:
        yield c


@pytest.fixture
def fresh(standin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def registry_tree(seed_models, tmp_path_factory) -> str:
    tree = str(tmp_path_factory.mktemp("tree"))
    run_script("make_registry_tree.py", "--models", seed_models["dir"], "--out", tree)
    return tree


@pytest.fixture(scope="session")
def registry_url(registry_tree) -> Iterator[str]:
    """host:port of serve_registry.py serving the seed model tree on 127.0.0.1."""
    port = free_port()
    script = os.path.join(HERE, "serve_registry.py")
    proc = subprocess.Popen([sys.executable, script, "--root", registry_tree, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield "127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait()
