"""The repository is the collection ollama_fleet.fleet: it builds, installs, and documents every
module; from the clone it resolves through collections/ with nothing installed."""

from __future__ import annotations

import os
import pathlib
import subprocess
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


def run(*args, env=None, cwd=ROOT):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, check=False,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    built = run(BIN / "ansible-galaxy", "collection", "build", "--output-path", work, ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    tarballs = list(work.glob("ollama_fleet-fleet-*.tar.gz"))
    assert len(tarballs) == 1, built.stdout
    dest = work / "installed"
    done = run(BIN / "ansible-galaxy", "collection", "install", "--no-deps", "-p", dest, tarballs[0], cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"tarball": tarballs[0], "path": dest}


def test_the_build_holds_the_collection_and_nothing_of_the_tests(installed):
    with tarfile.open(installed["tarball"]) as tar:
        members = {m.name for m in tar.getmembers()}
    for wanted in ("galaxy.yml", "MANIFEST.json", "plugins/module_utils/names.py", "plugins/filter/ollama.py",
                   "roles/ollama/tasks/main.yml", "playbooks/upgrade.yml", "meta/runtime.yml"):
        assert wanted in members or wanted == "galaxy.yml", f"{wanted} missing from the build"
    for module in MODULES:
        assert f"plugins/modules/{module}.py" in members
    for unwanted in ("tests", "molecule", "inventories", "collections", ".venv", ".cache", "scripts"):
        assert not any(m == unwanted or m.startswith(unwanted + "/") for m in members), f"{unwanted}/ is in the build"


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_documents_every_installed_module(installed, module):
    cfg = installed["path"] / "ansible.cfg"  # not the clone's: only the installed build is searched
    cfg.write_text("[defaults]\ncollections_path = %s\n" % installed["path"])
    doc = run(BIN / "ansible-doc", "-t", "module", f"ollama_fleet.fleet.{module}",
              env={"ANSIBLE_CONFIG": str(cfg)}, cwd=installed["path"])
    assert doc.returncode == 0, doc.stderr
    assert str(installed["path"]) in doc.stdout, "documented from somewhere else than the installed build"
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
        assert section in doc.stdout, f"{module}: no {section} in ansible-doc"


def test_from_the_clone_modules_and_filters_resolve_without_installing():
    doc = run(BIN / "ansible-doc", "-t", "module", "ollama_fleet.fleet.haproxy_server_state")
    assert doc.returncode == 0, doc.stderr
    assert "collections/ansible_collections/ollama_fleet/fleet/plugins/modules" in doc.stdout
    out = run(BIN / "ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", "ansible.builtin.debug",
              "-a", "msg={{ 'example.com/ns/model:tag' | ollama_fleet.fleet.ollama_manifest_path }}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "example.com/ns/model/tag" in out.stdout
