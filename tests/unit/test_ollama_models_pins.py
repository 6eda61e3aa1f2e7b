"""The pin check of the ollama_models role (tasks/pins.yml) against a local HTTP registry: the
manifest of a model some host still needs is fetched ONCE for the whole play, with the Accept
header Ollama's pull sends, its sha256 compared with the pin, and a moved tag fails EVERY host of
the play before any of them pulls; pins every host already has are not fetched at all."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pathlib
import sys
import threading

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"digest": "sha256:" + "c" * 64, "size": 10}, "layers": []}).encode()
PIN = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
NAME = "qwen3:4b-instruct-2507-q4_K_M"


class Registry(http.server.ThreadingHTTPServer):
    """Serves `body` at /v2/library/qwen3/manifests/<tag>; records (path, Accept) of each GET."""

    def __init__(self):
        self.body = MANIFEST
        self.requests: list[tuple[str, str]] = []

        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                registry.requests.append((self.path, self.headers.get("Accept", "")))
                if self.path != "/v2/library/qwen3/manifests/4b-instruct-2507-q4_K_M":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
                self.send_header("Content-Length", str(len(registry.body)))
                self.end_headers()
                self.wfile.write(registry.body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def registry():
    server = Registry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def play(tmp_path: pathlib.Path, registry: Registry, installed: dict[str, list]) -> dict:
    """pins.yml on hosts n1, n2 (local connection) with the model's source the local registry
    (source mirror, insecure) and each host's /api/tags as `installed` gives it."""
    model = {"name": NAME, "digest": PIN, "source": "mirror", "mirror": "127.0.0.1:%d" % registry.server_address[1],
             "insecure": True}
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "ollama_models_tags": {"status": 200, "json": {"models": models}}} for name, models in installed.items()}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Pin check", "hosts": "all", "gather_facts": False, "vars": {"ollama_models_list": [model]},
        "tasks": [{"name": "Check the pins", "ansible.builtin.include_role": {"name": "ollama_models", "tasks_from": "pins"}}]}]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
           "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    ansible = ROOT / ".venv" / "bin" / "ansible-playbook"
    import subprocess  # noqa: PLC0415 - only here

    run = subprocess.run([str(ansible if ansible.exists() else "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                          str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    report = json.loads(run.stdout[run.stdout.index("{"):])
    report["rc"] = run.returncode
    return report


def messages(report: dict, host: str) -> str:
    return " ".join(str(t["hosts"][host].get("msg", "")) for p in report["plays"] for t in p["tasks"]
                    if host in t["hosts"] and t["hosts"][host].get("failed"))


def test_pin_served_is_fetched_once_with_ollamas_accept_header(tmp_path, registry):
    report = play(tmp_path, registry, {"n1": [], "n2": []})
    assert report["rc"] == 0, report["stats"]
    assert len(registry.requests) == 1, registry.requests  # once for the play, not once per node
    assert registry.requests[0][1] == "application/vnd.docker.distribution.manifest.v2+json"


def test_moved_tag_fails_every_host_before_any_pull(tmp_path, registry):
    registry.body = MANIFEST.replace(b'"size": 10', b'"size": 11')  # the tag moved: other bytes
    report = play(tmp_path, registry, {"n1": [], "n2": [{"name": NAME, "digest": PIN}]})
    assert report["rc"] != 0
    assert report["stats"]["n1"]["failures"] == report["stats"]["n2"]["failures"] == 1, report["stats"]
    for host in ("n1", "n2"):
        text = messages(report, host)
        assert "Nothing was downloaded" in text and "tag has moved" in text and PIN.split(":")[1] in text, text
    assert len(registry.requests) == 1


def test_unreachable_source_fails_with_the_url(tmp_path, registry):
    registry.shutdown()
    registry.server_close()
    report = play(tmp_path, registry, {"n1": []})
    assert report["rc"] != 0
    assert "/v2/library/qwen3/manifests/4b-instruct-2507-q4_K_M" in messages(report, "n1")


def test_installed_pins_are_not_fetched(tmp_path, registry):
    report = play(tmp_path, registry, {"n1": [{"name": NAME, "digest": PIN}], "n2": [{"name": NAME, "digest": PIN}]})
    assert report["rc"] == 0, report["stats"]
    assert registry.requests == []
