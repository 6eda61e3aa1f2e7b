"""The air-gap bundle (scripts/ollama_bundle.py, module_utils bundle.py and registry.py, module
ollama_bundle_check), against a loopback stand-in playing upstream: serve_registry.py (the
stand-in's registry, CDN-style 307 to another host name for blobs) serves a registry tree and a
release page built by the stand-in's build_model.py / build_release.py. Only 127.0.0.1 and
`localhost` are reached; every server is started here and stopped at the end of the module.

- built from the lab's pins, copied to another directory and checked there; the ollama_mirror
  role fills from the copy after its own bundle check; a re-run downloads 0 bytes;
- a moved tag is refused, naming the model, before any blob is asked for;
- a partial file is resumed from where it stopped, and a connection cut mid-blob is resumed in
  the same run;
- a new pin fetches only its new layers; a release without a pin is fetched, checked against
  sha256sum.txt and reported (exit 3), never used silently;
- the air-gapped check refuses a flipped byte, a missing blob, an extra file and a lock whose pins
  differ from the inventory, naming each, and the mirror role then installs nothing;
- the registry protocol, request by request, against a scripted server.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "ollama_standin"
# The lab's variant base carries the golden answers in its weights (the lab pins that build).
GOOD_ANSWERS = ROOT / "tests" / "golden" / "answers-good.json"
SCRIPT = ROOT / "scripts" / "ollama_bundle.py"
LAB = ROOT / "inventories" / "lab"
VERSION = "0.33.0"
INSTRUCT = "qwen3:4b-instruct-2507-q4_K_M"
THINKING = "qwen3:4b"
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_ollama_mirror import failed, failures, play  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.ollama_fleet.fleet.plugins.module_utils import bundle, digests, registry  # noqa: E402


def script(name: str, *args: str) -> str:
    return subprocess.run([sys.executable, str(STANDIN / name), *args], capture_output=True, text=True, check=True, timeout=120).stdout


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Upstream:
    """serve_registry.py over a tree holding the registry (/v2/...) and a release page
    (/download/v<version>/...), blobs 307-redirected to http://localhost:<port>/..."""

    def __init__(self, work: pathlib.Path, models: pathlib.Path, release: pathlib.Path) -> None:
        self.tree = work / "tree"
        script("make_registry_tree.py", "--models", str(models), "--out", str(self.tree))
        shutil.copytree(release, self.tree / "download" / ("v" + VERSION))
        self.log_path = work / "registry.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, str(STANDIN / "serve_registry.py"), "--root", str(self.tree),
                                      "--redirect-host", "localhost"], stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def requests(self) -> list[str]:
        self.log.flush()
        return [line for line in self.log_path.read_text().splitlines() if '"GET ' in line or "range " in line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def bundle_cmd(*args: str, env: dict | None = None, upstream: Upstream | None = None) -> subprocess.CompletedProcess:
    extra = []
    if upstream is not None and args[0] == "build":
        extra = ["--registry", "registry.ollama.ai=" + upstream.url, "--release-url", upstream.url + "/download"]
    return subprocess.run([sys.executable, str(SCRIPT), *args, *extra], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "CI": "true", **(env or {})}, cwd=ROOT)


def fetched(run: subprocess.CompletedProcess) -> int:
    return int(re.search(r"fetched (\d+) bytes, kept", run.stdout).group(1))


def site(path: pathlib.Path, models: list[dict], release_pins: dict | None) -> pathlib.Path:
    """A minimal site inventory: one node, its pins."""
    (path / "group_vars").mkdir(parents=True)
    (path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"ollama_nodes": {"hosts": {"gpu01": None}}}}}))
    values = {"ollama_version": VERSION, "ollama_models_list": models}
    if release_pins is not None:
        values["ollama_release_pins"] = release_pins
    (path / "group_vars" / "ollama_nodes.yml").write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def lab_upstream(tmp_path_factory):
    """The lab's two models as build_model.py makes them (the lab pins their digests; the base with the good answers) and the
    release the lab pins (its sha256sum.txt, through OLLAMA_FLEET_RELEASE_DIR)."""
    work = tmp_path_factory.mktemp("lab_upstream")
    releases, models = work / "releases", work / "models"
    script("build_release.py", "--version", VERSION, "--out", str(releases / VERSION))
    script("build_model.py", "--name", THINKING, "--variant", "thinking", "--out", str(models))
    script("build_model.py", "--name", INSTRUCT, "--variant", "instruct", "--answers", str(GOOD_ANSWERS), "--out", str(models))
    up = Upstream(work, models, releases / VERSION)
    yield {"upstream": up, "env": {"OLLAMA_FLEET_RELEASE_DIR": str(releases)}, "work": work, "models": models}
    up.stop()


@pytest.fixture(scope="module")
def lab_bundle(lab_upstream):
    up, env, work = lab_upstream["upstream"], lab_upstream["env"], lab_upstream["work"]
    out = work / "artifacts"
    first = bundle_cmd("build", "-i", str(LAB), "--out", str(out), env=env, upstream=up)
    assert first.returncode == 0, first.stdout + first.stderr
    seen = len(up.requests())
    again = bundle_cmd("build", "-i", str(LAB), "--out", str(out), env=env, upstream=up)
    assert again.returncode == 0, again.stdout + again.stderr
    copy = work / "carried" / "artifacts"
    shutil.copytree(out, copy)
    check = bundle_cmd("check", "-i", str(LAB), "--artifacts", str(copy), env=env)
    return {"out": out, "copy": copy, "first": first, "again": again, "check": check,
            "rerun_requests": up.requests()[seen:], "lock": json.loads((out / bundle.LOCK_NAME).read_text())}


def test_bundle_from_the_lab_pins_has_the_layout_and_a_lock(lab_bundle, lab_upstream):
    out, lock = lab_bundle["out"], lab_bundle["lock"]
    overlay = yaml.safe_load((LAB / "group_vars/ollama_nodes/10-lab.yml").read_text())
    pins = {m["name"]: m["digest"] for m in overlay["ollama_models_list"]}
    assert {m["name"]: m["digest"] for m in lock["pins"]["models"]} == pins
    sums = (lab_upstream["work"] / "releases" / VERSION / "sha256sum.txt").read_text()
    archive = "ollama-linux-amd64.tar.zst"
    assert lock["pins"]["release"] == {"version": VERSION, "archives": {"amd64": {
        "file": archive, "sha256": digests.sha256sum_lookup(sums, archive), "pinned": True}}}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", lock["created"])
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name not in (bundle.LOCK_NAME, bundle.CACHE_NAME))
    assert on_disk == sorted(lock["files"])
    for relative, entry in lock["files"].items():
        assert entry["size"] == (out / relative).stat().st_size and entry["sha256"] == sha256(out / relative), relative
        assert entry["source"].startswith(lab_upstream["upstream"].url), entry
    for name, digest in pins.items():
        model, tag = name.split(":")
        manifest = out / "models/manifests/registry.ollama.ai/library" / model / tag
        assert "sha256:" + sha256(manifest) == digest
        for layer in registry.manifest_layers(json.loads(manifest.read_bytes())):
            assert sha256(out / "models/blobs" / layer["digest"].replace(":", "-")) == layer["digest"][7:]
    assert (out / "ollama" / VERSION / archive).is_file() and (out / "ollama" / VERSION / "sha256sum.txt").is_file()
    assert fetched(lab_bundle["first"]) > 0


def test_blobs_came_through_the_cdn_redirect_with_range(lab_bundle, lab_upstream):
    log = "\n".join(lab_upstream["upstream"].requests())
    assert re.search(r'"GET /v2/library/qwen3/blobs/sha256:[0-9a-f]{64} HTTP/1.1" 307', log)
    assert re.search(r"range bytes=0-\d+ /v2/library/qwen3/blobs/sha256:", log)


def test_rerun_downloads_nothing(lab_bundle):
    assert fetched(lab_bundle["again"]) == 0, lab_bundle["again"].stdout
    assert lab_bundle["rerun_requests"] == []


def test_copy_checks_on_the_other_side(lab_bundle):
    check = lab_bundle["check"]
    assert check.returncode == 0, check.stdout
    # The copy has other inodes and ctimes: every byte was read once on arrival.
    total = sum(f["size"] for f in lab_bundle["lock"]["files"].values())
    assert "%d bytes (%d bytes hashed, 0 files unchanged" % (total, total) in check.stdout


def test_mirror_role_fills_from_the_checked_copy(lab_bundle, tmp_path):
    copy, lock = lab_bundle["copy"], lab_bundle["lock"]
    models = [{"name": m["name"], "digest": m["digest"], "bundle": str(copy / "models")} for m in lock["pins"]["models"]]
    sha = lock["pins"]["release"]["archives"]["amd64"]["sha256"]
    hostvars = {"ollama_mirror_root": str(tmp_path / "mirror"), "ollama_mirror_models": models,
                "ollama_mirror_releases": [{"version": VERSION, "dir": str(copy / "ollama" / VERSION)}],
                "ollama_mirror_bundle_lock": str(copy / bundle.LOCK_NAME),
                "ollama_mirror_release_pins": {VERSION: {"amd64": "sha256:" + sha}}}
    tasks = [{"name": "Run fill", "ansible.builtin.include_role": {"name": "ollama_mirror", "tasks_from": "fill"}}]
    report = play(tmp_path / "run", tasks, {"localhost": hostvars})
    assert report["rc"] == 0, failures(report)
    assert sha256(tmp_path / "mirror/releases" / ("v" + VERSION) / "ollama-linux-amd64.tar.zst") == sha
    assert (tmp_path / "mirror/registry/manifests/library/qwen3/4b").is_file()


def test_moved_tag_is_refused_before_any_blob(lab_upstream, tmp_path):
    """Upstream's qwen3:4b now points at other weights (another seed): the lab's pin no longer matches."""
    moved = tmp_path / "moved-models"
    script("build_model.py", "--name", THINKING, "--variant", "thinking", "--seed", "moved", "--out", str(moved))
    script("build_model.py", "--name", INSTRUCT, "--variant", "instruct", "--answers", str(GOOD_ANSWERS), "--out", str(moved))
    up = Upstream(tmp_path, moved, lab_upstream["work"] / "releases" / VERSION)
    try:
        run = bundle_cmd("build", "-i", str(LAB), "--out", str(tmp_path / "artifacts"), env=lab_upstream["env"], upstream=up)
        requests = up.requests()
    finally:
        up.stop()
    assert run.returncode == 1
    assert "refused, no blob was fetched" in run.stdout and "%s: the registry's manifest" % THINKING in run.stdout, run.stdout
    assert INSTRUCT + ": the registry" not in run.stdout
    assert not [r for r in requests if "/blobs/" in r], requests
    assert not (tmp_path / "artifacts" / "models" / "blobs").exists()


@pytest.fixture(scope="module")
def big_upstream(tmp_path_factory):
    """A model with a 3 MiB layer, and the same name rebuilt with other weights (a new pin)."""
    work = tmp_path_factory.mktemp("big_upstream")
    release = work / "release"
    script("build_release.py", "--version", VERSION, "--out", str(release))
    old = script("build_model.py", "--name", "big:1", "--size", str(3 << 20), "--out", str(work / "old")).split()[0]
    new = script("build_model.py", "--name", "big:1", "--size", str(3 << 20), "--seed", "2", "--out", str(work / "new")).split()[0]
    (work / "o").mkdir()
    (work / "n").mkdir()
    up_old, up_new = Upstream(work / "o", work / "old", release), Upstream(work / "n", work / "new", release)
    sums = (release / "sha256sum.txt").read_text()
    pins = {VERSION: {"amd64": "sha256:" + digests.sha256sum_lookup(sums, "ollama-linux-amd64.tar.zst")}}
    yield {"old": old, "new": new, "up_old": up_old, "up_new": up_new, "pins": pins, "work": work}
    up_old.stop()
    up_new.stop()


def layers(models_dir: pathlib.Path, name: str = "big:1") -> dict[str, int]:
    raw = (models_dir / "manifests/registry.ollama.ai/library" / name.replace(":", "/")).read_bytes()
    return {layer["digest"]: layer["size"] for layer in registry.manifest_layers(json.loads(raw))}


def test_partial_blob_is_resumed_where_it_stopped(big_upstream, tmp_path):
    inv = site(tmp_path / "site", [{"name": "big:1", "digest": "sha256:" + big_upstream["old"]}], big_upstream["pins"])
    digest, size = max(layers(big_upstream["work"] / "old").items(), key=lambda kv: kv[1])
    blob = (big_upstream["work"] / "old" / "blobs" / digest.replace(":", "-")).read_bytes()
    partial = inv / "artifacts/models/blobs" / (digest.replace(":", "-") + "-partial")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(blob[:1000000])
    run = bundle_cmd("build", "-i", str(inv), upstream=big_upstream["up_old"])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(resumed at byte 1000000)" in run.stdout
    assert "range bytes=1000000-%d /v2/library/big/blobs/%s" % (size - 1, digest) in "\n".join(big_upstream["up_old"].requests())
    assert sha256(inv / "artifacts/models/blobs" / digest.replace(":", "-")) == digest[7:] and not partial.exists()
    total = sum(layers(big_upstream["work"] / "old").values())
    total += (big_upstream["work"] / "old/manifests/registry.ollama.ai/library/big/1").stat().st_size
    release_bytes = sum((inv / "artifacts/ollama" / VERSION / f).stat().st_size for f in ("ollama-linux-amd64.tar.zst", "sha256sum.txt"))
    assert fetched(run) == total - 1000000 + release_bytes


class CuttingHandler(BaseHTTPRequestHandler):
    """Serves one blob by Range and, the first time, cuts the connection after 1 MB."""

    protocol_version = "HTTP/1.1"
    blob = b""
    cut = {"done": False}
    ranges: list[str] = []

    def log_message(self, *args) -> None:  # noqa: D401 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        rng = self.headers.get("Range", "")
        self.ranges.append(rng)
        start = int(rng[6:].split("-")[0])
        body = self.blob[start:]
        self.send_response(206)
        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(self.blob) - 1, len(self.blob)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not self.cut["done"]:
            self.cut["done"] = True
            self.wfile.write(body[:1000000])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def test_connection_cut_mid_blob_resumes_in_the_same_run(tmp_path):
    data = os.urandom(3000000)
    CuttingHandler.blob = data
    server = ThreadingHTTPServer(("127.0.0.1", 0), CuttingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        got = registry.download("http://127.0.0.1:%d/blob" % server.server_address[1], str(tmp_path / "part"), size=len(data),
                                sleep=lambda _s: None)
    finally:
        server.shutdown()
    assert CuttingHandler.ranges == ["bytes=0-2999999", "bytes=1000000-2999999"]
    assert got == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "fetched": len(data)}


def test_new_pin_fetches_only_its_new_layers(big_upstream, tmp_path):
    inv = site(tmp_path / "site", [{"name": "big:1", "digest": "sha256:" + big_upstream["old"]}], big_upstream["pins"])
    first = bundle_cmd("build", "-i", str(inv), upstream=big_upstream["up_old"])
    assert first.returncode == 0, first.stdout
    old, new = layers(big_upstream["work"] / "old"), layers(big_upstream["work"] / "new")
    site_file = inv / "group_vars/ollama_nodes.yml"
    site_file.write_text(site_file.read_text().replace(big_upstream["old"], big_upstream["new"]))
    second = bundle_cmd("build", "-i", str(inv), upstream=big_upstream["up_new"])
    assert second.returncode == 0, second.stdout
    added = {d: s for d, s in new.items() if d not in old}
    assert added and len(added) < len(new), "the two builds share their template, license and params layers"
    manifest = len((big_upstream["work"] / "new/manifests/registry.ollama.ai/library/big/1").read_bytes())
    assert fetched(second) == sum(added.values()) + manifest
    assert "removed %d no longer pinned" % (len(set(old) - set(new)) + 0) in second.stdout
    blobs = {p.name for p in (inv / "artifacts/models/blobs").iterdir()}
    assert blobs == {d.replace(":", "-") for d in new}
    assert bundle_cmd("check", "-i", str(inv)).returncode == 0


def test_unpinned_release_is_reported_never_used_silently(big_upstream, tmp_path):
    inv = site(tmp_path / "site", [{"name": "big:1", "digest": "sha256:" + big_upstream["old"]}], None)
    run = bundle_cmd("build", "-i", str(inv), upstream=big_upstream["up_old"])
    sha = big_upstream["pins"][VERSION]["amd64"][7:]
    assert run.returncode == 3, run.stdout
    assert "has no pin in ollama_release_pins" in run.stdout and '  "%s":\n    amd64: sha256:%s' % (VERSION, sha) in run.stdout
    lock = json.loads((inv / "artifacts" / bundle.LOCK_NAME).read_text())
    assert lock["pins"]["release"]["archives"]["amd64"] == {"file": "ollama-linux-amd64.tar.zst", "sha256": sha, "pinned": False}
    check = bundle_cmd("check", "-i", str(inv))
    assert check.returncode == 1 and "ollama_release_pins has no sha256 for Ollama %s on amd64" % VERSION in check.stdout


def test_pack_and_unpack_carry_the_bundle(big_upstream, tmp_path):
    inv = site(tmp_path / "site", [{"name": "big:1", "digest": "sha256:" + big_upstream["old"]}], big_upstream["pins"])
    tar = tmp_path / "carry.tar"
    built = bundle_cmd("build", "-i", str(inv), "--pack", str(tar), upstream=big_upstream["up_old"])
    assert built.returncode == 0, built.stdout
    assert (tmp_path / "carry.tar.sha256").read_text() == "%s  carry.tar\n" % sha256(tar)
    other = tmp_path / "airgapped"
    shutil.copytree(inv / "group_vars", other / "group_vars")
    shutil.copy(inv / "hosts.yml", other / "hosts.yml")
    done = bundle_cmd("unpack", "-i", str(other), str(tar))
    assert done.returncode == 0, done.stdout
    assert "matches its lock and the inventory's pins" in done.stdout
    assert sorted(p.name for p in (other / "artifacts").iterdir()) == sorted(p.name for p in (inv / "artifacts").iterdir())
    data = bytearray(tar.read_bytes())
    data[-5000] ^= 1
    tar.write_bytes(bytes(data))
    refused = bundle_cmd("unpack", "-i", str(tmp_path / "site"), str(tar))
    assert refused.returncode == 1 and "carry.tar.sha256 says" in refused.stdout


# -- the air-gapped check ---------------------------------------------------------------------------

def flip(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def tampered(lab_bundle, tmp_path_factory):
    """Copies of the lab bundle, each broken one way, and the mirror role run on each (fill, which
    checks the bundle first); a control copy left intact."""
    work = tmp_path_factory.mktemp("tampered")
    lock = lab_bundle["lock"]
    biggest = max((r for r in lock["files"] if r.startswith("models/blobs/")), key=lambda r: lock["files"][r]["size"])
    cases = {}
    for case in ("control", "flipped", "missing", "extra", "pins"):
        copy = work / case / "artifacts"
        shutil.copytree(lab_bundle["out"], copy)
        cases[case] = copy
    flip(cases["flipped"] / biggest)
    (cases["missing"] / biggest).unlink()
    (cases["extra"] / "models" / "blobs" / ("sha256-" + "0" * 64)).write_bytes(b"smuggled")
    hosts = {}
    sha = lock["pins"]["release"]["archives"]["amd64"]["sha256"]
    for case, copy in cases.items():
        models = [{"name": m["name"], "digest": m["digest"], "bundle": str(copy / "models")} for m in lock["pins"]["models"]]
        if case == "pins":  # the inventory moved a pin; the lock was not rebuilt
            models[0]["digest"] = "sha256:" + "1" * 64
        hosts[case] = {"ollama_mirror_root": str(work / case / "mirror"), "ollama_mirror_models": models,
                       "ollama_mirror_releases": [{"version": VERSION, "dir": str(copy / "ollama" / VERSION)}],
                       "ollama_mirror_bundle_lock": str(copy / bundle.LOCK_NAME),
                       "ollama_mirror_release_pins": {VERSION: {"amd64": "sha256:" + sha}}}
    # run_once would apply one host's result to all: each case runs in its own play.
    reports = {}
    for case, hostvars in hosts.items():
        tasks = [{"name": "Run fill", "ansible.builtin.include_role": {"name": "ollama_mirror", "tasks_from": "fill"}}]
        reports[case] = play(work / case / "run", tasks, {"localhost": hostvars})
    return {"work": work, "reports": reports, "biggest": biggest, "lock": lock}


@pytest.mark.parametrize("case, wanted", [
    ("flipped", r"{biggest}: sha256:[0-9a-f]{{64}}, the lock says sha256:"),
    ("missing", r"{biggest}: missing"),
    ("extra", r"models/blobs/sha256-0{{64}}: extra file, not in the lock"),
    ("pins", r"the lock pins {name} at sha256:[0-9a-f]{{64}}, the inventory at sha256:1{{64}}"),
])
def test_airgapped_check_refuses_and_nothing_is_installed(tampered, case, wanted):
    report = tampered["reports"][case]
    assert failed(report, "localhost")
    pattern = wanted.format(biggest=re.escape(tampered["biggest"]), name=re.escape(tampered["lock"]["pins"]["models"][0]["name"]))
    assert any(re.search(pattern, m) for m in failures(report)), failures(report)
    assert not (tampered["work"] / case / "mirror").exists(), "something was installed"


def test_airgapped_check_control_passes(tampered):
    report = tampered["reports"]["control"]
    assert report["rc"] == 0, failures(report)
    assert (tampered["work"] / "control" / "mirror" / "registry" / "blobs").is_dir()


def test_check_hash_cache_sees_a_rewrite_that_keeps_size_and_mtime(lab_bundle, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(lab_bundle["out"], copy)
    assert bundle.check(str(copy))["problems"] == []
    again = bundle.check(str(copy))
    assert again["problems"] == [] and again["hashed_bytes"] == 0 and again["cached_files"] == again["files"]
    target = copy / next(r for r in lab_bundle["lock"]["files"] if r.startswith("models/blobs/"))
    stat = target.stat()
    flip(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: only the ctime moved
    problems = bundle.check(str(copy))["problems"]
    assert len(problems) == 1 and problems[0].startswith(str(target.relative_to(copy)) + ": sha256:"), problems


# -- the registry protocol, request by request -------------------------------------------------------

class Scripted(BaseHTTPRequestHandler):
    """Answers from a table {path: (status, headers, body)} and records every request."""

    protocol_version = "HTTP/1.1"
    table: dict = {}
    seen: list = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append((self.headers.get("Host"), self.path, dict(self.headers)))
        status, headers, body = self.table.get(self.path, (404, {}, b"nope"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value.replace("PORT", str(self.server.server_address[1])))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Scripted.seen = []
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def test_manifest_is_asked_with_ollamas_accept_header(scripted):
    Scripted.table = {"/v2/library/m/manifests/t": (200, {}, b'{"layers": []}')}
    assert registry.fetch_manifest(scripted + "/v2/library/m/manifests/t") == b'{"layers": []}'
    assert Scripted.seen[0][2]["Accept"] == "application/vnd.docker.distribution.manifest.v2+json"


@pytest.mark.parametrize("answer, expected", [
    ((307, {"Location": "http://localhost:PORT/cdn/x"}, b""), "http://localhost:{port}/cdn/x"),  # another host: the direct URL
    ((200, {"Location": "/v2/library/m/blobs/sha256:x"}, b"body"), "{base}/v2/library/m/blobs/sha256:x"),  # the mirror's answer
    ((307, {"Location": "/same-host"}, b""), "{base}/same-host/direct"),  # same host: followed
    ((200, {}, b"body"), "http: no Location header in response"),
    ((302, {"Location": "http://localhost:PORT/cdn/x"}, b""), "unexpected status code 302"),
])
def test_direct_url_is_resolved_as_ollama_does(scripted, answer, expected):
    port = scripted.rsplit(":", 1)[1]
    Scripted.table = {"/v2/library/m/blobs/sha256:x": answer, "/same-host": (200, {"Location": "/same-host/direct"}, b"")}
    want = expected.format(port=port, base=scripted)
    if want.startswith("http://"):
        assert registry.direct_url(scripted + "/v2/library/m/blobs/sha256:x") == want
    else:
        with pytest.raises(registry.RegistryError, match=re.escape(want)):
            registry.direct_url(scripted + "/v2/library/m/blobs/sha256:x")
    assert Scripted.seen[0][1] == "/v2/library/m/blobs/sha256:x"
    assert all(host.startswith("127.0.0.1") for host, _p, _h in Scripted.seen), "another host's redirect was followed"


def test_the_protocol_is_defined_once():
    """The mirror serves manifests with, and the stand-in's pull asks with, the media type the bundle asks with."""
    mirror_vars = yaml.safe_load((ROOT / "roles/ollama_mirror/vars/main.yml").read_text())
    assert mirror_vars["ollama_mirror_manifest_type"] == registry.MANIFEST_MEDIA_TYPE
    assert '"Accept": "%s"' % registry.MANIFEST_MEDIA_TYPE in (STANDIN / "src/standin/registry.py").read_text()
    assert bundle.release_archive("0.13.5", "amd64") == "ollama-linux-amd64.tgz"
    assert bundle.release_archive("0.14.0", "arm64") == "ollama-linux-arm64.tar.zst"
    assert bundle.release_archive("0.33.0-rc1", "amd64") == "ollama-linux-amd64.tar.zst"


def test_progress_shows_on_a_terminal_only(monkeypatch, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import ollama_bundle  # pylint: disable=import-error
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("CI", "true")
    assert not ollama_bundle.progress_wanted()
    monkeypatch.delenv("CI")
    assert ollama_bundle.progress_wanted()
    bar = ollama_bundle.Progress("blob", True)
    bar.start -= 10
    bar.last -= 1
    bar(0, 100 << 20)
    bar.last -= 1
    bar(50 << 20, 100 << 20)
    err = capsys.readouterr().err
    assert re.search(r"blob  50\.0 MiB / 100\.0 MiB  5\.0 MiB/s  ETA 0:10", err), err
    quiet = ollama_bundle.Progress("blob", False)
    quiet(50 << 20, 100 << 20)
    assert capsys.readouterr().err == ""
