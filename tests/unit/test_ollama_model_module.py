"""ollama_model (plugins/modules): a pinned model installed through a node's Ollama API from a
registry or the site mirror, against the ollama STAND-IN (tests/ollama_standin, a test double of
Ollama, not Ollama) on 127.0.0.1 and the stand-in's registry server (serve_registry.py) on
127.0.0.1. Model A and model B are the same name at other weights (two manifest digests): a
registry that starts serving B under A's tag is a tag that moved upstream."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "ollama_standin"
NAME = "qwen3:4b"

from ansible_collections.ollama_fleet.fleet.plugins.module_utils import ollama_api  # noqa: E402
from ansible_collections.ollama_fleet.fleet.plugins.modules import ollama_model  # noqa: E402


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            ollama_api.call(url, "/api/version", timeout=1, method="GET")
            return
        except ollama_api.OllamaApiError:
            assert time.monotonic() < deadline and proc.poll() is None, "did not start: " + url
            time.sleep(0.05)


def build_tree(tmp: pathlib.Path, seed: str) -> tuple[pathlib.Path, str]:
    """A registry tree of qwen3:4b at weights `seed`; returns (tree, manifest digest hex)."""
    models, tree = tmp / f"models-{seed}", tmp / f"tree-{seed}"
    out = subprocess.run([sys.executable, str(STANDIN / "build_model.py"), "--name", NAME, "--seed", seed, "--out", str(models)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    subprocess.run([sys.executable, str(STANDIN / "make_registry_tree.py"), "--models", str(models), "--out", str(tree)],
                   check=True, capture_output=True)
    return tree, out[0].split(":")[-1]


class Lab:
    """A stand-in `ollama serve` with an empty store, and a registry serving `root` (A at first)."""

    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.tree_a, self.a = build_tree(tmp, "0")
        self.tree_b, self.b = build_tree(tmp, "1")
        assert self.a != self.b
        self.root = tmp / "registry"
        shutil.copytree(self.tree_a, self.root)
        port = free_port()
        self.registry = f"127.0.0.1:{port}"
        self.procs.append(subprocess.Popen([sys.executable, str(STANDIN / "serve_registry.py"), "--root", str(self.root),
                                            "--port", str(port), "--redirect-host", "localhost"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        subprocess.run([sys.executable, str(STANDIN / "build_release.py"), "--version", "0.33.0", "--out", str(tmp / "rel")],
                       check=True, capture_output=True)
        with tarfile.open(str(tmp / "rel" / "ollama-linux-amd64.tgz")) as tar:
            tar.extractall(str(tmp / "inst"))
        (tmp / "store").mkdir()
        self.url = f"http://127.0.0.1:{free_port()}"
        env = dict(os.environ, OLLAMA_HOST=self.url[7:], OLLAMA_MODELS=str(tmp / "store"), HOME=str(tmp),
                   OLLAMA_STANDIN_CONTROL=str(tmp / "control.json"), no_proxy="127.0.0.1,localhost")
        self.log = open(tmp / "serve.log", "wb")
        self.procs.append(subprocess.Popen([str(tmp / "inst" / "bin" / "ollama"), "serve"], env=env, stdout=self.log,
                                           stderr=subprocess.STDOUT))
        wait(self.url, self.procs[-1])

    def serve(self, tree: pathlib.Path) -> None:
        """The registry's tag now points at `tree`'s manifest (its blobs added)."""
        shutil.copytree(tree, self.root, dirs_exist_ok=True)

    def tags(self) -> dict[str, str]:
        return {m["name"]: m["digest"] for m in ollama_api.call(self.url, "/api/tags", method="GET")["models"]}

    def reset(self) -> None:
        for name in self.tags():
            ollama_api.call(self.url, "/api/delete", {"model": name}, method="DELETE")
        self.serve(self.tree_a)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    env = {k: os.environ.get(k) for k in ("no_proxy", "NO_PROXY")}
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    lab = Lab(tmp_path_factory.mktemp("ollama-model"))
    yield lab
    lab.stop()
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def fresh(lab):
    lab.reset()
    yield lab
    lab.reset()


def params(lab: Lab, digest: str, source: str = "registry") -> dict:
    name = f"{lab.registry}/library/{NAME}" if source == "registry" else NAME
    return {"api_url": lab.url, "name": name, "digest": "sha256:" + digest, "source": source,
            "mirror": lab.registry if source == "mirror" else "", "insecure": True, "timeout": 60}


def run_module(lab: Lab, args: dict, check: bool = False) -> dict:
    """The module as Ansible runs it: an ad-hoc call on localhost, the JSON result parsed."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    ansible = ROOT / ".venv" / "bin" / "ansible"
    cmd = [str(ansible if ansible.exists() else "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", "-m", "ollama_fleet.fleet.ollama_model", "-a", json.dumps(args)]
    run = subprocess.run(cmd + (["--check", "--diff"] if check else []), capture_output=True, text=True, env=env, cwd=ROOT,
                         check=False, timeout=120)
    return json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_installs_the_pin_once_and_then_changes_nothing(fresh):
    first = run_module(fresh, params(fresh, fresh.a))
    assert first["changed"] and not first.get("failed"), first
    assert first["previous"] == "" and first["digest"] == fresh.a
    assert fresh.tags() == {f"{fresh.registry}/library/{NAME}": fresh.a}  # no backup name left
    again = run_module(fresh, params(fresh, fresh.a))
    assert not again["changed"] and not again.get("failed") and again["pulled"] == "", again


def test_check_mode_pulls_nothing_and_shows_the_change(fresh):
    result = run_module(fresh, params(fresh, fresh.a), check=True)
    assert result["changed"] and result["diff"]["after"].strip().endswith("@" + fresh.a), result
    assert fresh.tags() == {}


def test_moved_tag_leaves_the_installed_digest_serving(fresh):
    """Installed A; the pin moves to B but the registry still serves A under the tag (or the other
    way round): the pull brings the wrong digest and A is put back byte for byte."""
    assert run_module(fresh, params(fresh, fresh.a))["digest"] == fresh.a
    fresh.serve(fresh.tree_b)  # upstream moved the tag to B; the site still pins ... C (neither)
    pin = hashlib.sha256(b"a digest nobody serves").hexdigest()
    result = run_module(fresh, params(fresh, pin))
    assert result.get("failed") and "the registry serves digest " + fresh.b in result["msg"], result
    assert "previously installed digest " + fresh.a + " is still in place" in result["msg"]
    assert fresh.tags() == {f"{fresh.registry}/library/{NAME}": fresh.a}, "A was not put back, or a backup name is left"
    assert result["digest"] == fresh.a


def test_a_wrong_digest_with_nothing_installed_installs_nothing(fresh):
    result = run_module(fresh, params(fresh, fresh.b))  # the registry serves A
    assert result.get("failed") and f"the registry serves digest {fresh.a}" in result["msg"], result
    assert "nothing was installed" in result["msg"]
    assert fresh.tags() == {}


def test_new_pin_from_the_registry_replaces_the_old_one(fresh):
    """CONTROL for the test above: the same roll with the registry serving the pin succeeds."""
    assert run_module(fresh, params(fresh, fresh.a))["digest"] == fresh.a
    fresh.serve(fresh.tree_b)
    result = run_module(fresh, params(fresh, fresh.b))
    assert result["changed"] and result["previous"] == fresh.a and result["digest"] == fresh.b, result
    assert fresh.tags() == {f"{fresh.registry}/library/{NAME}": fresh.b}


def test_mirror_installs_under_the_canonical_name_and_drops_the_mirror_name(fresh):
    result = run_module(fresh, params(fresh, fresh.a, source="mirror"))
    assert result["changed"] and result["pulled"] == f"{fresh.registry}/library/{NAME}", result
    assert fresh.tags() == {NAME: fresh.a}


def test_mirror_with_another_digest_leaves_the_canonical_name_as_it_was(fresh):
    assert run_module(fresh, params(fresh, fresh.a, source="mirror"))["digest"] == fresh.a
    fresh.serve(fresh.tree_b)
    pin = hashlib.sha256(b"a digest nobody serves").hexdigest()
    result = run_module(fresh, params(fresh, pin, source="mirror"))
    assert result.get("failed") and f"the mirror serves digest {fresh.b}" in result["msg"], result
    assert fresh.tags() == {NAME: fresh.a}


def test_unreachable_api_fails_naming_the_call():
    with pytest.raises(ollama_api.OllamaApiError, match="GET /api/tags"):
        ollama_model.installed(f"http://127.0.0.1:{free_port()}", NAME)
