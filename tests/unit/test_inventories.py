"""The tested path is the path users run: the lab is the production example plus a short overlay,
reached over SSH as a sudo user, and both inventories pass the preflight exactly as shipped."""

from __future__ import annotations

import configparser
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "inventories" / "production"
LAB = ROOT / "inventories" / "lab"
GROUPS = ("all", "ollama_nodes", "lb_nodes", "monitoring_nodes", "mirror_nodes")
# What a lab may change, and nothing else: addresses and client/admin/monitoring sources (the
# firewall's networks: the lab's are its Docker network's), the stand-in's release and model
# sources, waits that a container makes shorter, the front's address, firewall sources and
# secret files (made by scripts/lab_secrets.py, never committed), and what a site mirror serves
# (the stand-in's release and bundle, from the controller's cache) and to whom; the pins of the
# releases the lab builds itself. No monitoring
# setting (interval, threshold) is here: the lab's Prometheus runs with the production example's.
LAB_MAY_SET = {
    "ollama_mirror_releases", "ollama_mirror_models", "ollama_mirror_bundle_lock", "firewall_mirror_sources",
    "lab_cache", "firewall_admin_sources", "firewall_client_sources", "firewall_lb_sources", "firewall_monitoring_sources",
    "ollama_source", "ollama_controller_dir", "ollama_release_pins", "ollama_models_list", "ollama_start_timeout",
    "keepalived_vip_cidr", "firewall_extra_rules", "haproxy_tls_certificate_file", "haproxy_tls_key_file",
    "haproxy_tls_ca_file", "haproxy_api_keys",
    # Where the golden set is (the production example's, linked): Molecule's inventories are elsewhere.
    "ollama_verify_golden_file",
}


def preflight(inventory: pathlib.Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_FLEET_", "ANSIBLE_"))} | extra_env
    return subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/preflight.yml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def with_secrets(inventory: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    """The front's secrets are never committed: a site puts them in <inventory>/secrets/, the lab
    makes them in .cache/lab/ (scripts/lab_secrets.py). Both are made here the same way."""
    if inventory == LAB:
        subprocess.run([sys.executable, str(ROOT / "scripts/lab_secrets.py")], check=True, capture_output=True)
        return inventory
    site = tmp_path / "site"
    shutil.copytree(inventory, site)
    subprocess.run([sys.executable, str(ROOT / "scripts/lab_secrets.py"), str(tmp_path / "made")], check=True, capture_output=True)
    (site / "secrets").mkdir()
    for name in ("front.crt", "front.key"):
        shutil.copy(tmp_path / "made" / "tls" / name, site / "secrets" / name)
    key = (tmp_path / "made" / "api-key").read_text().strip()
    (site / "secrets" / "api-keys.yml").write_text(yaml.safe_dump([{"name": "crm", "key": key}]))
    return site


@pytest.mark.parametrize("inventory", [PRODUCTION, LAB], ids=["production", "lab"])
def test_preflight_passes_on_the_inventory_as_shipped(inventory, tmp_path):
    """No facts, no exported variables, no reachable host: validation alone, on every host.
    Only the secrets a site or the lab provides are added (they are never committed)."""
    # The lab pins the releases it builds (their sha256sum.txt): one stands in for the build here.
    releases = tmp_path / "releases"
    (releases / "0.33.0").mkdir(parents=True)
    (releases / "0.33.0" / "sha256sum.txt").write_text("%s  ollama-linux-amd64.tar.zst\n" % ("ab" * 32))
    run = preflight(with_secrets(inventory, tmp_path), OLLAMA_FLEET_RELEASE_DIR=str(releases))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]
    expected = {h for g in hosts.values() for h in g["hosts"]}
    assert {r[0] for r in recap} == expected
    assert all(r[1:] == ("0", "0", "0") for r in recap), recap


def test_production_preflight_passes_with_a_site_mirror(tmp_path):
    """An air-gapped site: lb02 listed in mirror_nodes and the artifacts in <inventory>/artifacts.
    The nodes then take the release and every model from it (the mirror source, plain HTTP), and
    the mirror serves exactly the nodes' pins (checked by the ollama_mirror role's preflight)."""
    site = with_secrets(PRODUCTION, tmp_path)
    hosts = yaml.safe_load((site / "hosts.yml").read_text())
    hosts["all"]["children"]["mirror_nodes"]["hosts"] = {"lb02.example.internal": None}
    (site / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (site / "artifacts/ollama/0.33.0").mkdir(parents=True)
    (site / "artifacts/ollama/0.33.0/sha256sum.txt").write_text("")
    (site / "artifacts/models/manifests").mkdir(parents=True)
    (site / "artifacts/bundle.lock.json").write_text("{}")  # preflight checks it exists; the mirror role checks the bundle
    (site / "show.yml").write_text(yaml.safe_dump([{"hosts": "gpu01.example.internal:lb02.example.internal", "gather_facts": False,
                                                     "tasks": [{"ansible.builtin.debug": {"msg": "{{ {'source': ollama_source | default(''), "
                                                                "'url': ollama_mirror_url | default(''), 'models': ollama_models_list | default([]), "
                                                                "'served': ollama_mirror_models | default([])} | to_json }}"}}]}]))
    run = preflight(site)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_FLEET_", "ANSIBLE_"))}
    shown = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(site), str(site / "show.yml")],
                           cwd=ROOT, env={**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, capture_output=True, text=True, timeout=300)
    report = json.loads(shown.stdout[shown.stdout.index("{"):])
    seen = {h: json.loads(r["msg"]) for t in report["plays"][0]["tasks"] for h, r in t["hosts"].items()}
    node, mirror = seen["gpu01.example.internal"], seen["lb02.example.internal"]
    assert node["source"] == "mirror" and node["url"] == "http://10.20.0.22:8080/releases"
    assert {(m["source"], m["mirror"], m["insecure"]) for m in node["models"]} == {("mirror", "10.20.0.22:8080", True)}
    assert [(m["name"], m["digest"]) for m in mirror["served"]] == [(m["name"], m["digest"]) for m in node["models"]]


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


def test_a_node_behind_the_front_may_not_listen_on_every_address(tmp_path):
    site = with_secrets(PRODUCTION, tmp_path)
    nodes = site / "group_vars" / "ollama_nodes.yml"
    nodes.write_text(nodes.read_text().replace('ollama_bind_address: "{{ ansible_host }}"', 'ollama_bind_address: 0.0.0.0'))
    run = preflight(site)
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert 'ollama_bind_address is "0.0.0.0" while lb_nodes has hosts' in out, out[-3000:]
