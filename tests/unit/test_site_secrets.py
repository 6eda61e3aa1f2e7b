"""scripts/site_secrets.py: a new site's secrets, made once in <inventory>/secrets/ (the two keys,
a CA and the front's certificate for the inventory's virtual IP), kept on a re-run, optionally
vault-encrypted; and a site copy without them fails the preflight naming the file and the command."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import yaml
from cryptography import x509

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/site_secrets.py"


def site(tmp_path: pathlib.Path) -> pathlib.Path:
    inventory = tmp_path / "mysite"
    shutil.copytree(ROOT / "inventories/production", inventory)
    return inventory


def test_secrets_are_made_once_for_the_sites_virtual_ip(tmp_path):
    inventory = site(tmp_path)
    run = subprocess.run([sys.executable, str(SCRIPT), str(inventory), "--name", "front.example.internal"],
                         capture_output=True, text=True, check=True)
    secrets = inventory / "secrets"
    keys = yaml.safe_load((secrets / "api-keys.yml").read_text())
    assert [k["name"] for k in keys] == ["platform", "operator"] and keys[1]["models"] == ["*"]
    assert all(len(k["key"]) >= 32 and k["key"] not in run.stdout for k in keys)  # never printed
    cert = x509.load_pem_x509_certificate((secrets / "front.crt").read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in alt.get_values_for_type(x509.IPAddress)] == ["10.20.0.100"]  # the example's VIP
    assert alt.get_values_for_type(x509.DNSName) == ["front.example.internal"]
    assert oct((secrets / "front.key").stat().st_mode & 0o777) == "0o600"
    before = {p.name: p.read_bytes() for p in secrets.iterdir()}
    again = subprocess.run([sys.executable, str(SCRIPT), str(inventory)], capture_output=True, text=True, check=True)
    assert "nothing made" in again.stdout and {p.name: p.read_bytes() for p in secrets.iterdir()} == before


def test_vault_encrypts_the_keys(tmp_path):
    inventory = site(tmp_path)
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    subprocess.run([sys.executable, str(SCRIPT), str(inventory), "--vault-password-file", str(password)],
                   capture_output=True, text=True, check=True)
    for name in ("api-keys.yml", "front.key", "ca.key"):
        assert (inventory / "secrets" / name).read_bytes().startswith(b"$ANSIBLE_VAULT"), name
    assert not (inventory / "secrets" / "front.crt").read_bytes().startswith(b"$ANSIBLE_VAULT")


def test_a_site_without_its_secrets_is_told_what_to_run(tmp_path):
    inventory = site(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_FLEET_", "ANSIBLE_"))}
    run = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/preflight.yml"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "scripts/site_secrets.py <inventory>" in out, out[-3000:]
    assert "Unable to access the file" not in out  # no raw lookup error
