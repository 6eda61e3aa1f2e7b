"""Roles `ollama_models` and `ollama_verify` in the default scenario (site.yml on the ollama STAND-IN,
a test double of Ollama, not Ollama): pinned digests installed, the customer-service variant's
parameters and system prompt as configured, the variant warmed up, and verify.yml passing."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
sys.path.insert(0, str(ROOT / "scripts"))
from lab_report import handed  # noqa: E402  (a `{{ fleet_* }}` hand-over followed to its value)
from node_api import api  # noqa: E402  (shared helper, found through the line above)

DEFAULTS = yaml.safe_load((ROOT / "roles/ollama_models/defaults/main.yml").read_text())


def setting(host, name):
    """The inventory's value (a `{{ fleet_* }}` hand-over followed to its literal), else the role default."""
    hv = host.ansible.get_variables()
    return handed(hv, hv.get(name, DEFAULTS[name]))


def test_pinned_digests_are_installed(host):
    pins = setting(host, "ollama_models_list")
    assert pins, "the lab inventory pins no model"
    status, body = api(host, "GET", "/api/tags")
    assert status == 200
    installed = {m["name"]: m["digest"] for m in body["models"]}
    for pin in pins:
        assert installed.get(pin["name"]) == pin["digest"].removeprefix("sha256:"), pin["name"]


def test_variant_parameters_and_system_prompt(host):
    name = setting(host, "ollama_models_cs_name")
    status, show = api(host, "POST", "/api/show", {"model": name})
    assert status == 200, show
    params = {}
    for line in show["parameters"].splitlines():
        key, value = line.split(None, 1)
        params.setdefault(key, []).append(value.strip())
    assert params["num_ctx"] == [str(setting(host, "ollama_models_cs_num_ctx"))]
    assert float(params["temperature"][0]) == pytest.approx(float(setting(host, "ollama_models_cs_temperature")))
    assert show["system"] == setting(host, "ollama_models_cs_system")


def test_variant_is_loaded(host):
    status, ps = api(host, "GET", "/api/ps")
    assert status == 200
    name = setting(host, "ollama_models_cs_name")
    assert (name if ":" in name else name + ":latest") in [m["name"] for m in ps["models"]]


def test_verify_playbook_passes(host, tmp_path):
    name = host.backend.get_hostname()
    run = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-l", name,
         str(ROOT / "playbooks/verify.yml"), "-e", f"ollama_verify_report_file={tmp_path}/report.json"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
                                       "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")}, timeout=600,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    (row,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert row["target"] == name and row["problems"] == [] and row["errors"] == 0
