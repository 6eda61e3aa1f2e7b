"""plugins/module_utils/names.py and digests.py: the one definition of model names, their paths and
URLs, and the digest forms, used by the filters, the modules, the bundle install and the mirror.
A hosted name gives one consistent URL and path everywhere, the same as Ollama's parser (the
stand-in implements Ollama's types/model ParseName)."""

from __future__ import annotations

import pathlib
import re
import sys

import pytest

from ansible_collections.ollama_fleet.fleet.plugins.filter import haproxy as haproxy_filters
from ansible_collections.ollama_fleet.fleet.plugins.filter import ollama as f
from ansible_collections.ollama_fleet.fleet.plugins.module_utils import digests, names

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ollama_standin" / "src"))
from standin import names as standin_names  # noqa: E402  (Ollama's parser, as the stand-in models it)

A = "a" * 64


@pytest.mark.parametrize("name, parts", [
    ("qwen3:4b", ("registry.ollama.ai", "library", "qwen3", "4b")),
    ("qwen3", ("registry.ollama.ai", "library", "qwen3", "latest")),
    ("me/model:v1", ("registry.ollama.ai", "me", "model", "v1")),
    # Two parts are namespace/model, never host/model: Ollama pulls this from registry.ollama.ai.
    ("example.com/model:tag", ("registry.ollama.ai", "example.com", "model", "tag")),
    ("example.com/ns/model:tag", ("example.com", "ns", "model", "tag")),
    ("10.0.0.5:8080/library/qwen3:4b", ("10.0.0.5:8080", "library", "qwen3", "4b")),
    ("10.0.0.5:8080/library/qwen3", ("10.0.0.5:8080", "library", "qwen3", "latest")),
    ("hf.co/me/model:Q4_K_M", ("hf.co", "me", "model", "Q4_K_M")),
])
def test_parse_is_ollamas(name, parts):
    parsed = names.parse(name)
    assert (parsed.host, parsed.namespace, parsed.model, parsed.tag) == parts
    ollama = standin_names.parse(name)
    assert (ollama.host, ollama.namespace, ollama.model, ollama.tag) == parts


@pytest.mark.parametrize("name", ["example.com/ns/model:tag", "example.com/model:tag", "qwen3:4b", "hf.co/me/model"])
def test_a_name_has_one_url_and_one_path_everywhere(name):
    ollama = standin_names.parse(name)
    # Where a store and a bundle hold the manifest (the models role's bundle source and the
    # mirror's fill read it there), as Ollama writes it.
    assert f.ollama_manifest_path(name) == names.manifest_path(name) == ollama.filepath().replace("\\", "/")
    # Where Ollama's pull fetches it (the pin check before any download), and the mirror's tree.
    url = f.ollama_manifest_url({"name": name, "source": "registry"})
    assert url == "https://%s/v2/%s/manifests/%s" % (ollama.host, ollama.namespace_model(), ollama.tag)
    assert url.endswith("/v2/" + f.ollama_registry_path(name).rsplit("/", 1)[0] + "/manifests/" + ollama.tag)
    # From the site mirror: the mirror is the host; namespace, model and tag stay.
    mirrored = {"name": name, "source": "mirror", "mirror": "10.0.0.5:8080", "insecure": True}
    assert f.ollama_source_name(mirrored) == "10.0.0.5:8080/%s:%s" % (ollama.namespace_model(), ollama.tag)
    assert f.ollama_manifest_url(mirrored) == "http://10.0.0.5:8080/v2/%s/manifests/%s" % (ollama.namespace_model(), ollama.tag)
    mirror_parsed = standin_names.parse(f.ollama_source_name(mirrored))
    assert (mirror_parsed.namespace, mirror_parsed.model, mirror_parsed.tag) == (ollama.namespace, ollama.model, ollama.tag)
    assert f.ollama_registry_path(name) == "%s/%s" % (ollama.namespace_model(), ollama.tag)


def test_hosted_name_case():
    name = "example.com/ns/model:tag"
    assert f.ollama_manifest_url({"name": name}) == "https://example.com/v2/ns/model/manifests/tag"
    assert f.ollama_manifest_path(name) == "example.com/ns/model/tag"
    assert f.ollama_registry_path(name) == "ns/model/tag"
    assert names.blob_url(name, "sha256:" + A) == "https://example.com/v2/ns/model/blobs/sha256:" + A
    assert f.ollama_model_name(name) == name
    assert f.ollama_model_name("example.com/ns/model") == "example.com/ns/model:latest"


def test_backup_name():
    # The same name as the models role gave before (molecule/models checks no backup is left).
    assert f.ollama_backup_name("qwen3:4b") == "ollama-models-backup/qwen3:" + __import__("hashlib").sha1(b"qwen3:4b").hexdigest()[:12]
    assert names.parse(f.ollama_backup_name("example.com/ns/model:tag")).model == "model"


def test_sources_that_pull_nothing():
    assert f.ollama_manifest_url({"name": "qwen3:4b", "source": "bundle"}) == ""
    assert f.ollama_source_name({"name": "qwen3:4b", "source": "bundle"}) == ""


@pytest.mark.parametrize("value, hexpart, valid", [
    ("sha256:" + A, A, True),
    (A, A, True),
    ("SHA256:" + A.upper(), A, True),
    ("sha256:" + A[:-1], "sha256:" + A[:-1], False),
    ("", "", False),
    (None, "", False),
])
def test_digest_forms(value, hexpart, valid):
    assert digests.digest_hex(value) == hexpart == f.ollama_digest_hex(value)
    assert digests.is_digest(value) is (valid and value == value.lower()) if value else not digests.is_digest(value)


def test_blob_names_and_refs():
    assert digests.blob_filename("sha256:" + A) == digests.blob_filename(A) == "sha256-" + A == f.ollama_blob_filename(A)
    assert digests.digest_ref(A) == "sha256:" + A


def test_sha256sum_file():
    sums = "%s  ./ollama-linux-amd64.tgz\r\n%s *ollama-linux-arm64.tgz\n" % ("A" * 64, "b" * 64)
    assert digests.sha256sum_lookup(sums, "ollama-linux-amd64.tgz") == "a" * 64
    assert f.ollama_sha256sum("ollama-linux-arm64.tgz", sums) == "b" * 64
    assert digests.sha256sum_lookup(sums, "ollama-linux-amd64.tar.zst") == ""
    assert digests.sha256sum_lookup(sums, "ollama-linux-amd64") == ""


def test_sha256_of_a_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))
    assert digests.sha256_file(path) == digests.sha256_bytes(b"x" * (3 << 20))


def test_haproxy_uses_the_same_digest_rule():
    assert haproxy_filters.haproxy_digest_hex(["sha256:" + A, A, "SHA256:" + A.upper()]) == [A]
    assert haproxy_filters.haproxy_invalid_digests(["sha256:" + A, "sha256:xyz"]) == ["sha256:xyz"]


def test_api_url_and_host_port():
    assert names.api_url("0.0.0.0") == "http://127.0.0.1:11434"
    assert names.api_url("::", 8080) == "http://[::1]:8080"
    assert names.host_port("fd00::5", 80) == "[fd00::5]:80" == f.ollama_host_port("fd00::5", 80)
    assert names.host_port("*", 8080) == "*:8080"


# -- no role, playbook or inventory writes these rules again ---------------------------------------

SOURCES = [p for d in ("roles", "playbooks", "inventories") for p in (ROOT / d).rglob("*")
           if p.is_file() and p.suffix in (".yml", ".j2")] + [ROOT / "site.yml"]


@pytest.mark.parametrize("pattern, rule", [
    (r"regex_replace\('\^sha256:'", "the digest's hex form (ollama_digest_hex)"),
    (r"replace\(':', ?'-'\)", "a blob's file name (ollama_blob_filename)"),
    (r"name\.split\('/'\)", "a model name's parts (ollama_manifest_path, ollama_registry_path)"),
    (r"'registry\.ollama\.ai'", "the default registry host (names.parse)"),
    (r"'library/' ~", "the default namespace (ollama_source_name)"),
])
def test_rule_not_written_again(pattern, rule):
    for path in SOURCES:
        assert not re.search(pattern, path.read_text()), f"{path.relative_to(ROOT)}: {rule} written again"


def test_no_role_keeps_private_plugins():
    for role in (ROOT / "roles").iterdir():
        assert not (role / "library").exists(), f"{role.name}/library: modules belong in plugins/modules"
        assert not (role / "filter_plugins").exists(), f"{role.name}/filter_plugins: filters belong in plugins/filter"


@pytest.mark.parametrize(("name", "expected"), [
    ("qwen3-cs", {"qwen3-cs", "qwen3-cs:latest", "library/qwen3-cs", "library/qwen3-cs:latest",
                  "registry.ollama.ai/library/qwen3-cs", "registry.ollama.ai/library/qwen3-cs:latest"}),
    ("qwen3:4b", {"qwen3:4b", "library/qwen3:4b", "registry.ollama.ai/library/qwen3:4b"}),
    ("example.com/ns/model:tag", {"example.com/ns/model:tag"}),
    ("ns/model", {"ns/model", "ns/model:latest", "registry.ollama.ai/ns/model", "registry.ollama.ai/ns/model:latest"}),
])
def test_every_spelling_of_a_name_is_the_same_model(name, expected):
    spelled = names.spellings(name)
    assert set(spelled) == expected
    # Each spelling parses to the same model, as Ollama's parser (the stand-in's copy) reads it.
    assert {names.parse(s) for s in spelled} == {names.parse(name)}


def test_the_front_allowlist_spells_each_model_every_way():
    keys = [{"name": "platform", "key": "k" * 40}, {"name": "ops", "key": "o" * 40, "models": ["*"]},
            {"name": "crm", "key": "c" * 40, "models": ["qwen3:4b"]}]
    lines = haproxy_filters.haproxy_model_allowlist(keys, ["qwen3-cs"])
    assert "platform/qwen3-cs" in lines and "platform/registry.ollama.ai/library/qwen3-cs:latest" in lines
    assert "crm/library/qwen3:4b" in lines and not any(line.startswith("ops/") for line in lines)
    assert not any("key" in line or "k" * 40 in line for line in lines)  # owners and models only
    assert haproxy_filters.haproxy_any_model_owners(keys, ["qwen3-cs"]) == ["ops"]
    assert haproxy_filters.haproxy_unservable_models(keys, ["qwen3-cs"], ["qwen3-cs", "qwen3:4b"]) == []
    assert haproxy_filters.haproxy_unservable_models(keys, ["qwen3-cs"], ["qwen3:4b"]) == ["platform: qwen3-cs"]


def test_release_pins_from_a_sha256sum_file():
    sums = ("%s  ollama-linux-amd64.tgz\n%s  ollama-linux-amd64.tar.zst\n%s  ollama-linux-arm64.tgz\n%s  ollama-darwin.tgz\n"
            % ("1" * 64, "2" * 64, "3" * 64, "4" * 64))
    assert digests.release_pins(sums) == {"amd64": "2" * 64, "arm64": "3" * 64}  # tar.zst where there is one
    pins = {"0.33.0": {"amd64": "sha256:" + "A" * 64}}
    assert f.ollama_release_pin(pins, "0.33.0", "amd64") == "a" * 64
    assert f.ollama_release_pin(pins, "0.33.0", "arm64") == "" and f.ollama_release_pin(pins, "0.34.0", "amd64") == ""
    assert f.ollama_release_pin({"0.33.0": {"amd64": "not-a-digest"}}, "0.33.0", "amd64") == ""
