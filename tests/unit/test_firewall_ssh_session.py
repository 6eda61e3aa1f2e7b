"""The firewall's SSH guard finds the session's address in the process tree, as it must under
sudo, where the module's own environment no longer has SSH_CONNECTION."""

from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("firewall_ssh_session", ROOT / "plugins/modules/firewall_ssh_session.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)


def fake_proc(tmp_path, table):
    """table: pid -> (parent pid, command, environment dict)."""
    for pid, (ppid, comm, env) in table.items():
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "stat").write_bytes(f"{pid} ({comm}) S {ppid} {pid} {pid} 0".encode())
        (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()) + b"\0")
    return str(tmp_path)


def test_found_above_sudo(tmp_path):
    proc = fake_proc(tmp_path, {
        900: (1, "sshd", {}),
        901: (900, "sh", {"USER": "deploy", "SSH_CONNECTION": "172.28.30.1 51234 172.28.30.11 22"}),
        902: (901, "sudo", {"USER": "deploy", "SSH_CONNECTION": "172.28.30.1 51234 172.28.30.11 22"}),
        903: (902, "sh", {"USER": "root"}),
        904: (903, "python3 (x) y", {"USER": "root"}),  # a parenthesis inside the name
    })
    got = mod.parse(mod.ssh_connection(proc, 904))
    assert got == {"found": True, "client_address": "172.28.30.1", "client_port": 51234,
                   "server_address": "172.28.30.11", "server_port": 22}


def test_not_found_without_ssh(tmp_path):
    proc = fake_proc(tmp_path, {50: (1, "bash", {"USER": "root"}), 51: (50, "python3", {})})
    assert mod.parse(mod.ssh_connection(proc, 51)) == {"found": False}


def test_a_process_that_vanished_ends_the_walk(tmp_path):
    proc = fake_proc(tmp_path, {51: (50, "python3", {})})
    assert mod.ssh_connection(proc, 51) == ""
