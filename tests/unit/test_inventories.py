"""The tested path is the path users run: the lab is the production example plus a short overlay,
reached over SSH as a sudo user, and both inventories pass the preflight exactly as shipped."""

from __future__ import annotations

import configparser
import os
import pathlib
import re
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "inventories" / "production"
LAB = ROOT / "inventories" / "lab"
GROUPS = ("all", "ollama_nodes", "lb_nodes")
# What a lab may change, and nothing else: addresses and client/admin sources, the stand-in's
# release and model sources, and waits that a container makes shorter.
LAB_MAY_SET = {
    "lab_cache", "firewall_admin_sources", "firewall_client_sources", "firewall_lb_sources",
    "ollama_source", "ollama_controller_dir", "ollama_models_list", "ollama_start_timeout",
}


def preflight(inventory: pathlib.Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_FLEET_", "ANSIBLE_"))}
    return subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/preflight.yml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("inventory", [PRODUCTION, LAB], ids=["production", "lab"])
def test_preflight_passes_on_the_inventory_as_shipped(inventory):
    """No facts, no exported variables, no reachable host: validation alone, on every host."""
    run = preflight(inventory)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]
    expected = {h for g in hosts.values() for h in g["hosts"]}
    assert {r[0] for r in recap} == expected
    assert all(r[1:] == ("0", "0", "0") for r in recap), recap


@pytest.mark.parametrize("group", GROUPS)
def test_lab_group_vars_are_the_production_files(group):
    link = LAB / "group_vars" / group / "00-production.yml"
    assert link.is_symlink(), f"{link} must be a link to the production example"
    assert link.resolve() == (PRODUCTION / "group_vars" / f"{group}.yml").resolve()


def test_lab_overlay_is_short_and_only_what_a_lab_must_change():
    overlays = sorted(p for p in (LAB / "group_vars").glob("*/*.yml") if not p.is_symlink())
    assert [p.name for p in overlays] == ["10-lab.yml"] * len(overlays)
    lines = sum(len(p.read_text().splitlines()) for p in overlays)
    assert lines <= 60, f"the lab overlay has grown to {lines} lines"
    for path in overlays:
        extra = set(yaml.safe_load(path.read_text())) - LAB_MAY_SET
        assert not extra, f"{path.relative_to(ROOT)} changes {sorted(extra)}, which a site would not see"
    assert not list((LAB / "host_vars").glob("*")) if (LAB / "host_vars").exists() else True


def test_lab_connects_like_production():
    prod = yaml.safe_load((PRODUCTION / "hosts.yml").read_text())["all"]["vars"]
    lab = yaml.safe_load((LAB / "hosts.yml").read_text())["all"]["vars"]
    assert lab["ansible_user"] == prod["ansible_user"] and lab["ansible_become"] is prod["ansible_become"] is True
    assert "ansible_connection" not in lab, "the lab reaches its hosts over SSH, as production does"
    assert "StrictHostKeyChecking=yes" in lab["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=" in lab["ansible_ssh_common_args"]


def test_molecule_connects_like_production():
    base = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    opts = base["provisioner"]["connection_options"]
    assert opts["ansible_connection"] == "ssh" and opts["ansible_user"] == "deploy" and opts["ansible_become"] is True
    assert "StrictHostKeyChecking=yes" in opts["ansible_ssh_common_args"]


def test_no_global_switch_turns_host_key_checking_off():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    assert cfg.get("defaults", "host_key_checking", fallback="true").lower() not in ("false", "0", "no")
    for path in list((ROOT / "scripts").iterdir()) + [ROOT / ".ci/run"]:
        text = path.read_text()
        assert "HOST_KEY_CHECKING" not in text and "StrictHostKeyChecking=no" not in text, path
