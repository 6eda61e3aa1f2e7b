#!/usr/bin/env python3
"""Prepare a new site's secrets, once, in <inventory>/secrets/ (never committed):

    scripts/site_secrets.py inventories/mysite [--name front.example.internal ...] [--vault-password-file FILE]

- api-keys.yml: two bearer keys, `platform` (the customer-service platform: the models of
  haproxy_api_key_models, the variant) and `operator` (every model and the listing endpoints);
  add one item per further client (roles/haproxy/README.md);
- front.crt / front.key: for a first install, a certificate for the front's virtual IP (read from
  the inventory's group_vars/lb_nodes.yml) and the --name given, signed by a CA made here
  (secrets/ca.crt, the CA clients verify the front with, and secrets/ca.key). A site with its own
  PKI replaces front.crt and front.key with its certificate and key.
- with --vault-password-file, front.key, ca.key and api-keys.yml are encrypted with ansible-vault
  (the playbooks' file lookups decrypt them with the same password file).

Existing files are kept: a re-run makes only what is missing. Prints what it made, never a key.
"""

from __future__ import annotations

import argparse
import ipaddress
import pathlib
import secrets
import subprocess
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from lab_secrets import make_tls, write_private  # noqa: E402  (the same certificate code as the lab's)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def virtual_ip(inventory: pathlib.Path) -> str:
    path = inventory / "group_vars" / "lb_nodes.yml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    address = str((data or {}).get("keepalived_vip_cidr") or "").split("/")[0]
    ipaddress.ip_address(address)  # a site must set its virtual IP first
    return address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory", type=pathlib.Path)
    parser.add_argument("--name", action="append", default=None, help="DNS name of the front in its certificate (repeatable)")
    parser.add_argument("--vault-password-file", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    out = args.inventory / "secrets"
    made = []
    if not (out / "api-keys.yml").is_file():
        keys = [{"name": "platform", "key": secrets.token_urlsafe(36)},
                {"name": "operator", "key": secrets.token_urlsafe(36), "models": ["*"]}]
        write_private(out / "api-keys.yml", yaml.safe_dump(keys, sort_keys=False).encode())
        made.append("api-keys.yml (platform, operator)")
    if not all((out / f).is_file() for f in ("front.crt", "front.key")):
        try:
            address = virtual_ip(args.inventory)
        except ValueError:
            print(f"{args.inventory}/group_vars/lb_nodes.yml sets no keepalived_vip_cidr: set the front's virtual IP first",
                  file=sys.stderr)
            return 2
        names = args.name or ["ollama-front"]
        make_tls(out, names, [address], ca_common_name="ollama-fleet site CA")
        made.append(f"front.crt / front.key for {', '.join(names)} and {address}, ca.crt / ca.key")
    if args.vault_password_file:
        for name in ("front.key", "ca.key", "api-keys.yml"):
            path = out / name
            if path.is_file() and not path.read_bytes().startswith(b"$ANSIBLE_VAULT"):
                subprocess.run([str(ROOT / ".venv/bin/ansible-vault"), "encrypt", "--vault-password-file",
                                str(args.vault_password_file), str(path)], check=True, capture_output=True)
                made.append(f"{name} encrypted with ansible-vault")
    print(f"{out}: " + ("; ".join(made) if made else "every secret was already there, nothing made"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
