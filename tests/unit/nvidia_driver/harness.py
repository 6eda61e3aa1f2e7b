"""Shared helpers for the nvidia_driver tests: run a fixture playbook on localhost aliases."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent


def run_playbook(playbook, inventory, tmp_path, *extra, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
    )
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(inventory))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inv), str(playbook), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    start = proc.stdout.find("{")
    assert start >= 0, proc.stdout + proc.stderr
    return proc, json.loads(proc.stdout[start:])


def local_host(**hostvars):
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}
