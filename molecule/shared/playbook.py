"""Shared by the testinfra suites: run one of the project's playbooks against the scenario's hosts,
over the same SSH connection Molecule uses (the scenario inventory), from the repository root."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_playbook(playbook: str, *args: str, env: dict | None = None, timeout: int = 600) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `ansible-playbook -i <scenario inventory> <playbook> args...`."""
    path = pathlib.Path(playbook)
    if not path.is_absolute():
        path = ROOT / path
    run = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_FORCE_COLOR": "false", **(env or {})},
    )
    return run.returncode, run.stdout + run.stderr


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters per host (the last recap when several plays printed one)."""
    found: dict[str, dict[str, int]] = {}
    for host, counters in re.findall(r"^(\S+)\s+: (ok=\d+.*)$", output, re.M):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return found
