"""Shared by the unit tests of the roles' input validation: run a role's `validate` entry point on
one local host per case through ansible-playbook, and collect each case's failure messages."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def failure_messages(host_result: dict) -> list[str]:
    """The messages of a failed task result, looped items included; [] when it did not fail."""
    if not host_result.get("failed"):
        return []
    messages = [str(host_result.get("msg", ""))]
    messages += [str(r.get("msg", "")) for r in host_result.get("results", []) if r.get("failed")]
    return messages


def run_validation(work: pathlib.Path, inventory: dict, playbook: list, forks: int = 20) -> subprocess.CompletedProcess:
    """ansible-playbook with the JSON callback over `inventory` and `playbook`, written into `work`."""
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (work / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_FORKS": str(forks)}
    return subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(work / "inventory.yml"), str(work / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def outcomes(run: subprocess.CompletedProcess, cases) -> dict[str, list[str]]:
    """Failure messages per case (host name) from the JSON report of `run`."""
    report = json.loads(run.stdout[run.stdout.index("{"):])
    found: dict[str, list[str]] = {name: [] for name in cases}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if host in found:
                    found[host] += failure_messages(result)
    return found


def check_case(messages: list[str], expected: str | None, case: str) -> None:
    """None: the case must pass; otherwise it must fail with a message naming `expected`."""
    if expected is None:
        assert messages == [], messages
    else:
        assert messages, f"{case}: validation passed but should fail naming {expected!r}"
        assert any(expected in m for m in messages), messages
