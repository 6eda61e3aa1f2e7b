"""plugins/filter/ollama.py: the one definition of the API URL and of the /api/tags -> name@digest rule,
and that no role writes either rule again."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
from ansible_collections.ollama_fleet.fleet.plugins.filter import ollama as f  # noqa: E402

A = "a" * 64
B = "b" * 64
TAGS = {"models": [{"name": "qwen3:4b", "digest": A}, {"name": "qwen3-cs:latest", "digest": "sha256:" + B}]}


@pytest.mark.parametrize("bind, port, url", [
    ("", 11434, "http://127.0.0.1:11434"),
    ("0.0.0.0", 11434, "http://127.0.0.1:11434"),
    ("::", "8080", "http://[::1]:8080"),
    ("[::]", 11434, "http://[::1]:11434"),
    (None, 11434, "http://127.0.0.1:11434"),
    ("10.0.0.11", 11434, "http://10.0.0.11:11434"),
    ("fd00::11", 11434, "http://[fd00::11]:11434"),
    ("[fd00::11]", 11434, "http://[fd00::11]:11434"),
    ("node1.lan", 11500, "http://node1.lan:11500"),
])
def test_api_url(bind, port, url):
    assert f.ollama_api_url(bind, port) == url


def test_api_url_rejects_a_bad_port():
    with pytest.raises(Exception, match="port must be a number"):
        f.ollama_api_url("1.2.3.4", "x")


@pytest.mark.parametrize("name, full", [
    ("qwen3-cs", "qwen3-cs:latest"), ("qwen3:4b", "qwen3:4b"),
    ("mirror:5000/library/qwen3", "mirror:5000/library/qwen3:latest"),
    ("mirror:5000/library/qwen3:4b", "mirror:5000/library/qwen3:4b"),
])
def test_model_name(name, full):
    assert f.ollama_model_name(name) == full


def test_digests_of_tags_and_of_nothing():
    assert f.ollama_digests(TAGS) == {"qwen3:4b": A, "qwen3-cs:latest": B}
    for missing in (None, {}, "", {"models": None}):
        assert f.ollama_digests(missing) == {}


def test_unmet_pins():
    pins = [{"name": "qwen3:4b", "digest": "sha256:" + A}, {"name": "qwen3-cs", "digest": B},
            {"name": "qwen3:1.7b", "digest": A}, {"name": "qwen3-cs", "digest": A}]
    assert f.ollama_unmet_pins(pins, TAGS) == ["qwen3:1.7b@" + A, "qwen3-cs:latest@" + A]
    assert f.ollama_unmet_pins(pins[:1], None) == ["qwen3:4b@" + A]


def test_each_rule_has_one_definition():
    """grep finds no second derivation of the API URL or of name@digest from /api/tags."""
    roles = [p for p in (ROOT / "roles").rglob("*") if p.is_file() and p.suffix in (".yml", ".j2", ".py")]
    for path in roles:
        text = path.read_text()
        assert not re.search(r"http://\{\{.*ollama_bind_address", text, re.S), f"{path}: API URL derived again"
        assert not re.search(r"'127\.0\.0\.1' if ollama_bind_address", text), f"{path}: wildcard rule written again"
        assert "map('join', '@')" not in text, f"{path}: name@digest built again"
        # A manifest's layers (the mirror role) have digests too; /api/tags bodies are json/models.
        assert not re.search(r"(json|models)[^\n]*map\(attribute='digest'\)", text), f"{path}: /api/tags digests read again"
        assert ":latest')" not in text, f"{path}: the :latest rule written again"


# -- the serving guard: one rule for the ollama, ollama_models and nvidia_driver roles -----------


@pytest.mark.parametrize("reasons, serving, lbs, drained, refused", [
    (["version 0.33.1 switched in"], True, ["lb1"], False, True),
    (["version 0.33.1 switched in"], True, ["lb1"], True, False),  # upgrade.yml drained it
    (["version 0.33.1 switched in"], False, ["lb1"], False, False),  # not running: nothing to cut
    (["version 0.33.1 switched in"], True, [], False, False),  # no front: nothing can drain it
    ([], True, ["lb1"], False, False),  # nothing would interrupt it
    (["", None], True, ["lb1"], False, False),
])
def test_serving_guard(reasons, serving, lbs, drained, refused):
    message = f.ollama_serving_guard(reasons, "node1", serving, lbs, drained)
    assert bool(message) is refused
    if refused:
        assert "node1" in message and "version 0.33.1 switched in" in message
        assert "playbooks/upgrade.yml" in message and "left as it was" in message


def test_unmet_pins_moved_only_lists_pins_installed_at_another_digest():
    pins = [{"name": "qwen3:4b", "digest": B}, {"name": "qwen3-cs", "digest": B}, {"name": "new:1b", "digest": A}]
    assert f.ollama_unmet_pins(pins, TAGS) == [f"qwen3:4b@{B}", f"new:1b@{A}"]
    assert f.ollama_unmet_pins(pins, TAGS, moved_only=True) == [f"qwen3:4b@{B}"]


# -- the site mirror and the manifest a pull starts from ------------------------------------------


@pytest.mark.parametrize("groups, hostvars, expected", [
    ({}, {}, ""),
    ({"mirror_nodes": []}, {}, ""),
    ({"mirror_nodes": ["lb2"]}, {"lb2": {"ansible_host": "10.20.0.22"}}, "10.20.0.22:8080"),
    ({"mirror_nodes": ["lb2"]}, {"lb2": {"ansible_host": "10.20.0.22", "ollama_mirror_port": "8081"}}, "10.20.0.22:8081"),
    ({"mirror_nodes": ["lb2"]}, {"lb2": {"ansible_host": "10.20.0.22", "ollama_mirror_bind_address": "10.9.0.2"}}, "10.9.0.2:8080"),
    ({"mirror_nodes": ["mirror.lan"]}, {"mirror.lan": {}}, "mirror.lan:8080"),
    ({"mirror_nodes": ["m"]}, {"m": {"ansible_host": "fd00::5"}}, "[fd00::5]:8080"),
])
def test_site_mirror(groups, hostvars, expected):
    assert f.ollama_site_mirror(groups, hostvars) == expected


@pytest.mark.parametrize("model, url", [
    ({"name": "qwen3:4b", "source": "registry"}, "https://registry.ollama.ai/v2/library/qwen3/manifests/4b"),
    ({"name": "qwen3:4b"}, "https://registry.ollama.ai/v2/library/qwen3/manifests/4b"),
    ({"name": "acme/cs:v1"}, "https://registry.ollama.ai/v2/acme/cs/manifests/v1"),
    ({"name": "reg.lan:5000/acme/cs:v1", "insecure": True}, "http://reg.lan:5000/v2/acme/cs/manifests/v1"),
    ({"name": "qwen3:4b-instruct-2507-q4_K_M", "source": "mirror", "mirror": "10.20.0.22:8080", "insecure": True},
     "http://10.20.0.22:8080/v2/library/qwen3/manifests/4b-instruct-2507-q4_K_M"),
    ({"name": "acme/cs:v1", "source": "mirror", "mirror": "mirror.lan", "insecure": "True"}, "http://mirror.lan/v2/acme/cs/manifests/v1"),
    ({"name": "qwen3:4b", "source": "bundle", "bundle": "/srv"}, ""),
])
def test_manifest_url(model, url):
    assert f.ollama_manifest_url(model) == url


def test_pins_for_the_mirror():
    assert f.ollama_pins(["a:1", "b:2"], ["sha256:" + A, B], "/srv/models") == [
        {"name": "a:1", "digest": "sha256:" + A, "bundle": "/srv/models"}, {"name": "b:2", "digest": B, "bundle": "/srv/models"}]
    assert f.ollama_pins(iter(["a:1"]), iter([A]), iter(["/b1"])) == [{"name": "a:1", "digest": A, "bundle": "/b1"}]
    with pytest.raises(Exception, match="2 names, 1 digests"):
        f.ollama_pins(["a:1", "b:2"], [A], "/srv")
