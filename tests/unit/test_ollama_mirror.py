"""The ollama_mirror role, on this machine (local connection, a temporary mirror root).

- Filling: from the stand-in's release directory and model bundle (the lab's inputs), every file
  is checked by sha256 on arrival; a re-run copies and hashes nothing; a corrupt blob, a moved tag
  or an archive that does not match sha256sum.txt fails before anything is moved into place.
- Serving (needs nginx: installed, or extracted by scripts/host-packages.sh into .cache/nginx/;
  without it these tests skip on a developer's machine and fail under CI=true, see nginx.py):
  the role's nginx server, rendered from its template and validated with the role's own `nginx -t`
  command, runs as a foreground nginx on a free port over the filled tree; the stand-in's pull
  code (tests/ollama_standin, which follows real Ollama's download protocol) pulls both models
  through it, the release archives download and match sha256sum.txt, and the role's check.yml
  passes against it. nginx never touches the system's config, logs or service.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "ollama_standin"
ROLE = ROOT / "roles" / "ollama_mirror"
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from nginx import nginx  # noqa: E402  pylint: disable=wrong-import-position
VERSION = "0.33.0"
INSTRUCT = "qwen3:4b-instruct-2507-q4_K_M"
THINKING = "qwen3:4b"


def _filters():
    from ansible_collections.ollama_fleet.fleet.plugins.filter import ollama
    return ollama


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(name: str, *args: str) -> str:
    return subprocess.run([sys.executable, str(STANDIN / name), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict:
    """The lab's inputs: a release directory and one bundle holding both models."""
    base = tmp_path_factory.mktemp("artifacts")
    release, bundle = base / "release", base / "bundle"
    script("build_release.py", "--version", VERSION, "--out", str(release))
    digests = {
        INSTRUCT: script("build_model.py", "--name", INSTRUCT, "--variant", "instruct", "--size", "1500000", "--out", str(bundle)).split()[0],
        THINKING: script("build_model.py", "--name", THINKING, "--size", "700000", "--out", str(bundle)).split()[0],
    }
    return {"release": release, "bundle": bundle, "digests": digests}


def mirror_vars(artifacts: dict, root: pathlib.Path, bundle: pathlib.Path | None = None, **extra) -> dict:
    return {
        "ollama_mirror_root": str(root),
        "ollama_mirror_releases": [{"version": VERSION, "dir": str(artifacts["release"]),
                                    "archives": ["ollama-linux-amd64.tar.zst", "ollama-linux-amd64.tgz"]}],
        "ollama_mirror_models": [{"name": name, "digest": "sha256:" + digest, "bundle": str(bundle or artifacts["bundle"])}
                                 for name, digest in artifacts["digests"].items()],
        **extra,
    }


def play(work: pathlib.Path, tasks: list, hosts: dict, extra_vars: dict | None = None, path: str | None = None) -> dict:
    """One ansible-playbook run, every host on the local connection with its own variables (a case
    each), JSON callback; returns the report with rc. A run takes seconds to tens of seconds on a
    busy 2-core machine: the module makes five."""
    work.mkdir(parents=True, exist_ok=True)
    inventory = {"all": {"hosts": {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}
                                   for name, hostvars in hosts.items()}}}
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (work / "play.yml").write_text(yaml.safe_dump([{"name": "Mirror test", "hosts": "all", "gather_facts": False,
                                                    "tasks": tasks}], sort_keys=False))
    (work / "vars.json").write_text(json.dumps(extra_vars or {}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")}
    if path:
        env["PATH"] = path + os.pathsep + env.get("PATH", "")
    ansible = ROOT / ".venv" / "bin" / "ansible-playbook"
    run = subprocess.run([str(ansible if ansible.exists() else "ansible-playbook"), "-i", str(work / "inventory.yml"),
                          "-e", "@" + str(work / "vars.json"), str(work / "play.yml")],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    report = json.loads(run.stdout[run.stdout.index("{"):])
    report["rc"] = run.returncode
    return report


def role_tasks(entry: str) -> list:
    return [{"name": "Run " + entry, "ansible.builtin.include_role": {"name": "ollama_mirror", "tasks_from": entry}}]


def results(report: dict, host: str) -> list[tuple[str, dict]]:
    return [(task["task"]["name"], task["hosts"][host]) for p in report["plays"] for task in p["tasks"] if host in task["hosts"]]


def failures(report: dict, host: str = "localhost") -> list[str]:
    out = []
    for _name, result in results(report, host):
        if result.get("failed"):
            out.append(str(result.get("msg", "")))
            out += [str(r.get("msg", "")) for r in result.get("results", []) if r.get("failed")]
    return out


def failed(report: dict, host: str) -> bool:
    return report["stats"][host]["failures"] > 0


def ran(report: dict, name_part: str, host: str = "localhost") -> list[dict]:
    """Results of the tasks whose name contains name_part that were not skipped."""
    return [r for name, r in results(report, host) if name_part in name and not r.get("skipped")
            and not all(x.get("skipped") for x in r.get("results", [{}]))]


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def filled(artifacts, tmp_path_factory) -> dict:
    """A mirror filled once, then filled again (the re-run's report is kept)."""
    work = tmp_path_factory.mktemp("fill")
    root = work / "mirror"
    first = play(work / "first", role_tasks("validate") + role_tasks("fill"), {"localhost": mirror_vars(artifacts, root)})
    assert first["rc"] == 0, failures(first)
    second = play(work / "second", role_tasks("fill"), {"localhost": mirror_vars(artifacts, root)})
    assert second["rc"] == 0, failures(second)
    return {"root": root, "first": first, "second": second}


def test_filters():
    f = _filters()
    assert f.ollama_registry_path(INSTRUCT) == "library/qwen3/4b-instruct-2507-q4_K_M"
    assert f.ollama_registry_path("me/model") == "me/model/latest"
    assert f.ollama_manifest_path(INSTRUCT) == "registry.ollama.ai/library/qwen3/4b-instruct-2507-q4_K_M"
    assert f.ollama_manifest_path("hf.co/me/model:Q4") == "hf.co/me/model/Q4"
    sums = "%s  ./ollama-linux-amd64.tgz\r\n%s *ollama-linux-arm64.tgz\n" % ("A" * 64, "b" * 64)
    assert f.ollama_sha256sum("ollama-linux-amd64.tgz", sums) == "a" * 64
    assert f.ollama_sha256sum("ollama-linux-arm64.tgz", sums) == "b" * 64
    assert f.ollama_sha256sum("ollama-linux-amd64.tar.zst", sums) == ""
    assert f.ollama_host_port("*", 8080) == "*:8080"
    assert f.ollama_host_port("fd00::5", 80) == "[fd00::5]:80"


def test_fill_lays_out_releases_and_a_registry_tree(filled, artifacts):
    root = filled["root"]
    release = root / "releases" / ("v" + VERSION)
    assert (release / "sha256sum.txt").read_bytes() == (artifacts["release"] / "sha256sum.txt").read_bytes()
    for archive in ("ollama-linux-amd64.tar.zst", "ollama-linux-amd64.tgz"):
        assert sha256(release / archive) == sha256(artifacts["release"] / archive)
    assert not (release / "ollama-linux-arm64.tgz").exists()
    for name, digest in artifacts["digests"].items():
        manifest = root / "registry" / "manifests" / "library" / "qwen3" / name.split(":")[1]
        assert sha256(manifest) == digest
        layers = json.loads(manifest.read_text())
        for layer in layers["layers"] + [layers["config"]]:
            blob = root / "registry" / "blobs" / layer["digest"].replace(":", "-")
            assert sha256(blob) == layer["digest"][7:] and blob.stat().st_size == layer["size"]
    assert not (root / ".staging").exists()


def test_rerun_copies_and_hashes_nothing(filled):
    second = filled["second"]
    assert second["stats"]["localhost"]["changed"] == 0
    for step in ("Copy the missing", "Hash the copied", "Move the checked"):
        assert ran(second, step) == [], step


@pytest.fixture(scope="module")
def cases(filled, artifacts, tmp_path_factory) -> dict:
    """One run, a host per case: a truncated blob on a filled mirror, a corrupt blob in the bundle
    (same size, other bytes), a moved tag (the pin is not the bundle's manifest), an archive that
    does not match sha256sum.txt."""
    work = tmp_path_factory.mktemp("cases")
    lost_root = work / "lost"
    shutil.copytree(filled["root"], lost_root)
    lost = sorted((lost_root / "registry" / "blobs").iterdir(), key=lambda p: p.stat().st_size)[-1]
    lost.write_bytes(lost.read_bytes()[:1000])
    bundle = work / "bundle"
    shutil.copytree(artifacts["bundle"], bundle)
    corrupt = max((bundle / "blobs").iterdir(), key=lambda p: p.stat().st_size)
    flip_last_byte(corrupt)
    release = work / "release"
    shutil.copytree(artifacts["release"], release)
    flip_last_byte(release / "ollama-linux-amd64.tgz")
    moved = mirror_vars(artifacts, work / "moved")
    moved["ollama_mirror_models"] = [{**moved["ollama_mirror_models"][0], "digest": "sha256:" + "0" * 64}]
    bad_archive = mirror_vars(artifacts, work / "bad_archive")
    bad_archive["ollama_mirror_releases"][0]["dir"] = str(release)
    hosts = {
        "lost_blob": mirror_vars(artifacts, lost_root),
        "corrupt_blob": mirror_vars(artifacts, work / "corrupt", bundle=bundle),
        "moved_tag": moved,
        "bad_archive": bad_archive,
    }
    report = play(work / "run", role_tasks("fill"), hosts)
    return {"report": report, "work": work, "lost": lost, "corrupt": corrupt, "bundle": bundle}


def flip_last_byte(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))


def test_lost_blob_is_put_back_alone(cases):
    report, lost = cases["report"], cases["lost"]
    assert not failed(report, "lost_blob"), failures(report, "lost_blob")
    [copied] = ran(report, "Copy the missing blobs", "lost_blob")
    assert [r["item"]["digest"] for r in copied["results"] if not r.get("skipped")] == [lost.name.replace("-", ":", 1)]
    assert sha256(lost) == lost.name[7:]


def test_corrupt_blob_is_refused(cases):
    report, corrupt, root = cases["report"], cases["corrupt"], cases["work"] / "corrupt"
    assert failed(report, "corrupt_blob")
    messages = failures(report, "corrupt_blob")
    assert any("Corrupt files in %s" % cases["bundle"] in m and corrupt.name[7:] in m for m in messages), messages
    assert not (root / "registry" / "blobs" / corrupt.name).exists()
    assert not (root / "registry" / "manifests" / "library" / "qwen3").exists()


def test_moved_tag_copies_nothing(cases):
    report = cases["report"]
    assert failed(report, "moved_tag")
    assert any("the pin of %s is sha256:%s. Nothing of this model was copied" % (INSTRUCT, "0" * 64) in m
               for m in failures(report, "moved_tag")), failures(report, "moved_tag")
    assert list((cases["work"] / "moved" / "registry" / "blobs").iterdir()) == []


def test_archive_not_matching_sha256sum_is_refused(cases):
    report, dest = cases["report"], cases["work"] / "bad_archive" / "releases" / ("v" + VERSION)
    assert failed(report, "bad_archive")
    messages = failures(report, "bad_archive")
    assert any("ollama-linux-amd64.tgz has sha256" in m and "Nothing of release %s was moved into place" % VERSION in m
               for m in messages), messages
    assert not (dest / "ollama-linux-amd64.tgz").exists() and not (dest / "sha256sum.txt").exists()


def render(work: pathlib.Path, hosts: dict, found: dict) -> dict:
    """The role's template, written to <work>/<host>.conf with the role's own validate command
    (nginx -t on a whole config that includes the candidate), one host per case; the nginx found
    (an extracted one through PATH and its own mime.types and modules directory)."""
    tasks = [
        {"name": "Load the role's variables", "ansible.builtin.include_vars": {"file": str(ROLE / "vars" / "main.yml")}},
        {"name": "Load the Debian variables", "ansible.builtin.include_vars": {"file": str(ROLE / "vars" / "Debian.yml")}},
        {"name": "Write the server", "ansible.builtin.template": {
            "src": str(ROLE / "templates" / "ollama-mirror.conf.j2"), "dest": str(work) + "/{{ inventory_hostname }}.conf",
            "mode": "0644", "validate": "{{ ollama_mirror_nginx_check }}"}},
    ]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    return play(work, tasks, {name: {**defaults, **hostvars} for name, hostvars in hosts.items()},
                {"ollama_mirror_access_log": str(work / "access.log"), "ollama_mirror_nginx_mime_types": found["mime_types"],
                 "ollama_mirror_nginx_modules": found["modules"]}, path=found["bin_dir"])


@pytest.fixture(scope="module")
def found_nginx() -> dict:
    return nginx()  # skips without nginx, or fails under CI


@pytest.fixture(scope="module")
def served(found_nginx, filled, tmp_path_factory):
    """The filled mirror behind the role's nginx server on a free port (foreground nginx, own prefix)."""
    found = found_nginx
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    report = render(work, {"good": {"ollama_mirror_root": str(filled["root"]), "ollama_mirror_bind_address": "127.0.0.1",
                                    "ollama_mirror_port": port},
                           "broken": {"ollama_mirror_bind_address": "127.0.0.1", "ollama_mirror_port": 70000}}, found)
    assert not failed(report, "good"), failures(report, "good")
    server = work / "good.conf"
    temp = "".join("%s_temp_path %s/%s;\n" % (kind, work, kind) for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n" % (work, work)
        + "events {}\nhttp {\ninclude %s;\n%sinclude %s;\n}\n" % (found["mime_types"], temp, server))
    proc = subprocess.Popen([found["binary"], "-e", str(work / "error.log"), "-p", str(work), "-c", str(work / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start: " + (work / "error.log").read_text())
            time.sleep(0.05)
    yield {"port": port, "url": "http://127.0.0.1:%d" % port, "log": work / "access.log", "root": filled["root"],
           "render": report, "work": work}
    proc.terminate()
    proc.wait(10)


def test_broken_config_is_refused_by_the_validate_command(served):
    report = served["render"]
    assert failed(report, "broken") and not (served["work"] / "broken.conf").exists()
    assert any("failed to validate" in m for m in failures(report, "broken")), failures(report, "broken")


def test_ollama_pull_protocol_through_nginx(served, artifacts, tmp_path):
    """The stand-in's pull (real Ollama's protocol) takes both models from the mirror, byte for byte."""
    sys.path.insert(0, str(STANDIN / "src"))
    try:
        from standin import names, registry
        from standin.store import Store
    finally:
        sys.path.remove(str(STANDIN / "src"))
    store = Store(str(tmp_path / "models"))
    for name, digest in artifacts["digests"].items():
        wanted = names.parse("127.0.0.1:%d/library/%s" % (served["port"], name))
        registry.pull(store, wanted, True, lambda _p: None)
        assert sha256(pathlib.Path(store.manifest_path(wanted))) == digest
    log = served["log"].read_text()
    assert '"GET /v2/library/qwen3/manifests/4b-instruct-2507-q4_K_M HTTP/1.1" 200' in log
    assert " 206 " in log  # the parts came as Range answers


def test_blob_answers_carry_what_ollama_needs(served, artifacts):
    manifest = httpx.get(served["url"] + "/v2/library/qwen3/manifests/4b",
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert manifest.headers["content-type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert hashlib.sha256(manifest.content).hexdigest() == artifacts["digests"][THINKING]
    layer = manifest.json()["layers"][0]
    url = served["url"] + "/v2/library/qwen3/blobs/" + layer["digest"]
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == layer["size"]
    assert head.headers["location"] == "/v2/library/qwen3/blobs/" + layer["digest"]
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    blob = (served["root"] / "registry" / "blobs" / layer["digest"].replace(":", "-")).read_bytes()
    assert part.status_code == 206 and part.content == blob[10:20]
    assert httpx.get(served["url"] + "/v2/library/qwen3/manifests/nope").status_code == 404
    assert httpx.get(served["url"] + "/.staging/").status_code == 404
    assert httpx.post(url).status_code == 403


def test_release_layout_is_what_the_ollama_role_reads(served, artifacts):
    base = served["url"] + "/releases/v" + VERSION
    sums = httpx.get(base + "/sha256sum.txt")
    assert sums.status_code == 200 and sums.headers["content-type"].startswith("text/plain")
    archive = httpx.get(base + "/ollama-linux-amd64.tar.zst")
    line = next(x for x in sums.text.splitlines() if x.endswith("ollama-linux-amd64.tar.zst"))
    assert hashlib.sha256(archive.content).hexdigest() == line.split()[0]


def test_role_check_passes_against_the_served_mirror(served, artifacts, tmp_path):
    report = play(tmp_path, role_tasks("check"), {"localhost": mirror_vars(
        artifacts, served["root"], ollama_mirror_bind_address="127.0.0.1", ollama_mirror_port=served["port"])})
    assert report["rc"] == 0, failures(report)
    heads = ran(report, "Check each blob answers HEAD")
    assert heads and all(r.get("location") for r in heads[0]["results"])
