"""plugins/modules/haproxy_server_state.py against a fake HAProxy runtime socket: it
sends `set server` only when the admin state differs, waits for no current AND no queued session
(community.general.haproxy waits for scur only), waits for UP, times out with the figures, and
sends nothing in check mode; with state_file it saves the server states after each change, and
the haproxy role's save script (run on every reload and stop) never leaves a stale file."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins/modules/haproxy_server_state.py"
STAT_HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,"
               "status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,"
               "rate,rate_lim,rate_max,check_status,")
STATE_HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
                "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
                "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord")


class FakeHAProxy:
    """A runtime socket for backend ollama_nodes, server n1. `script` is a list of (status, scur,
    qcur) that successive `show stat` calls walk through (the last one repeats)."""

    def __init__(self, path: str, admin: int, script: list[tuple[str, int, int]]):
        self.path, self.admin, self.script, self.commands = path, admin, list(script), []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _answer(self, command: str) -> str:
        self.commands.append(command)
        if command == "show stat":
            status, scur, qcur = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            row = ["ollama_nodes", "n1", str(qcur), "0", str(scur), "0", "2", "10"] + [""] * 9 + [status] + [""] * 18 + ["L7OK"]
            return STAT_HEADER + "\n" + ",".join(row) + ",\n\n"
        if command in ("show servers state ollama_nodes", "show servers state"):
            return "1\n" + STATE_HEADER + "\n" + f"3 ollama_nodes 1 n1 10.0.0.11 2 {self.admin} 1 1 5 6 3 4 6 0 0 0 - 11434 -\n"
        if command.startswith("set server ollama_nodes/n1 state "):
            self.admin = {"drain": 0x08, "maint": 0x01, "ready": 0}[command.rsplit(" ", 1)[1]]
            return "\n"
        return "Unknown command.\n"

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    data += conn.recv(4096)
                conn.sendall(self._answer(data.decode().strip()).encode())

    def sets(self) -> list[str]:
        return [c for c in self.commands if c.startswith("set ")]


def run(args: dict, check: bool = False) -> dict:
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}
    # Run as Ansible runs it: its module_utils (haproxy_runtime) come from the collection.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "collections")}
    out = subprocess.run([sys.executable, str(MODULE)], input=json.dumps(payload), capture_output=True, text=True, timeout=60, env=env)
    return json.loads(out.stdout)


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "admin.sock")


def args(path, state, **extra):
    return {"socket": path, "backend": "ollama_nodes", "server": "n1", "state": state, **extra}


def test_drain_sends_the_command_once(sock_path):
    fake = FakeHAProxy(sock_path, admin=0, script=[("UP", 2, 0)])
    result = run(args(sock_path, "drain"))
    assert result["changed"] is True and result["before"] == "UP"
    assert fake.sets() == ["set server ollama_nodes/n1 state drain"]
    again = run(args(sock_path, "drain"))
    assert again["changed"] is False and fake.sets() == ["set server ollama_nodes/n1 state drain"]


def test_drain_waits_for_queued_sessions_too(sock_path):
    # No session left on the server, but requests still queued for it: not idle yet.
    fake = FakeHAProxy(sock_path, admin=0x08, script=[("DRAIN", 1, 0), ("DRAIN", 0, 2), ("DRAIN", 0, 1), ("DRAIN", 0, 0)])
    result = run(args(sock_path, "drain", wait=True, timeout=30))
    assert result["changed"] is False and result["sessions"] == {"scur": 0, "qcur": 0}
    assert result["waited_s"] >= 0.5  # three polls at 0.25 s
    assert fake.commands.count("show stat") == 4  # it went on polling while qcur > 0


def test_drain_timeout_names_the_figures(sock_path):
    FakeHAProxy(sock_path, admin=0x08, script=[("DRAIN", 1, 3)])
    result = run(args(sock_path, "drain", wait=True, timeout=1))
    assert result.get("failed") is True
    assert "ollama_nodes/n1: not idle after 1s (status DRAIN, 1 current and 3 queued sessions" in result["msg"]


def test_ready_waits_until_up(sock_path):
    fake = FakeHAProxy(sock_path, admin=0x01, script=[("MAINT", 0, 0), ("DOWN", 0, 0), ("DOWN", 0, 0), ("UP", 0, 0)])
    result = run(args(sock_path, "ready", wait=True, timeout=30))
    assert result["changed"] is True and result["status"] == "UP"
    assert fake.sets() == ["set server ollama_nodes/n1 state ready"]


def test_maint_from_drain_is_a_change(sock_path):
    fake = FakeHAProxy(sock_path, admin=0x08, script=[("DRAIN", 0, 0)])
    assert run(args(sock_path, "maint"))["changed"] is True
    assert fake.sets() == ["set server ollama_nodes/n1 state maint"]


def test_check_mode_sends_nothing(sock_path):
    fake = FakeHAProxy(sock_path, admin=0, script=[("UP", 2, 0)])
    result = run(args(sock_path, "drain", wait=True), check=True)
    assert result["changed"] is True and fake.sets() == []


def test_unknown_server_fails(sock_path):
    FakeHAProxy(sock_path, admin=0, script=[("UP", 0, 0)])
    result = run({**args(sock_path, "drain"), "server": "n9"})
    assert result.get("failed") is True and "has no server ollama_nodes/n9" in result["msg"]


def test_missing_socket_fails_clearly(sock_path):
    result = run(args(sock_path, "drain"))
    assert result.get("failed") is True and "HAProxy runtime socket" in result["msg"]


def test_a_change_is_saved_to_the_state_file_at_once(sock_path, tmp_path):
    # A load balancer restarted or rebooted right after the roll's change starts with it.
    state_file = tmp_path / "server-state"
    fake = FakeHAProxy(sock_path, admin=0, script=[("UP", 0, 0)])
    result = run(args(sock_path, "maint", state_file=str(state_file)))
    assert result["changed"] is True and result["saved"] is True
    row = state_file.read_text().splitlines()[-1].split()
    assert row[3] == "n1" and row[6] == "1"  # srv_admin_state: forced maintenance
    state_file.write_text("untouched")
    again = run(args(sock_path, "maint", state_file=str(state_file)))
    assert again["changed"] is False and again["saved"] is False and state_file.read_text() == "untouched"
    assert fake.commands.count("show servers state") == 1


SAVE_SCRIPT = ROOT / "roles/haproxy/files/haproxy_save_state.py"


def save(sock: str, state_file: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SAVE_SCRIPT), sock, str(state_file)], capture_output=True, text=True, timeout=30)


def test_the_save_script_writes_the_states_the_next_start_loads(sock_path, tmp_path):
    state_file = tmp_path / "server-state"
    state_file.write_text("1\n# be_id ...\n3 ollama_nodes 1 n1 10.0.0.11 2 1 1 1 5 6 3 4 6 0 0 0 - 11434 -\n")  # old: maint
    FakeHAProxy(sock_path, admin=0, script=[("UP", 0, 0)])  # an operator has put n1 back since
    out = save(sock_path, state_file)
    assert out.returncode == 0, out.stderr
    assert state_file.read_text().splitlines()[-1].split()[6] == "0"


def test_the_save_script_removes_a_file_it_cannot_renew(tmp_path):
    # HAProxy answers, but not with the states (here: an error): the old file would bring back
    # states that may have changed since, so it goes; the reload or stop still succeeds.
    sock_path = str(tmp_path / "admin.sock")
    fake = FakeHAProxy(sock_path, admin=0, script=[("UP", 0, 0)])
    fake._answer = lambda command: "Unknown command.\n"
    state_file = tmp_path / "server-state"
    state_file.write_text("stale")
    out = save(sock_path, state_file)
    assert out.returncode == 0 and not state_file.exists()
    assert "was removed" in out.stderr


def test_the_save_script_without_haproxy_keeps_the_file(tmp_path):
    state_file = tmp_path / "server-state"
    state_file.write_text("kept")
    out = save(str(tmp_path / "absent.sock"), state_file)
    assert out.returncode == 0 and state_file.read_text() == "kept"
