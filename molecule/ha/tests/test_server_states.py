"""HAProxy's server states are never stale after a restart or a reboot of a load balancer: a node
put back at run time stays in rotation, one held in maintenance (as a roll or a rebuild holds it)
stays out. The haproxy role saves the states on every reload and every stop; before that, the
state file was written on reload only and loaded on every start, so the sequence maint, reload,
ready, restart brought the node back in MAINT (issue 23). Run on the load balancer that does not
hold the virtual IP, so the front keeps serving. Nodes run the ollama STAND-IN (a test double)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import LBS, holder, runtime, sudo, wait_status  # noqa: E402

testinfra_hosts = ["ansible://lb_nodes"]

SERVER = "ha-node1"
FMAINT = 0x01


def admin_state(lb: str) -> int:
    """srv_admin_state of SERVER in `show servers state` (SRV_ADMF_* bits; 0 = ready)."""
    lines = runtime(lb, "show servers state ollama_nodes").splitlines()
    header = next(line.lstrip("# ").split() for line in lines if line.startswith("# be_id"))
    for line in lines:
        fields = dict(zip(header, line.split()))
        if fields.get("srv_name") == SERVER:
            return int(fields["srv_admin_state"])
    raise AssertionError(f"{SERVER} not in HAProxy's server states on {lb}")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def wait_haproxy(lb: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = subprocess.run(["docker", "exec", lb, "sh", "-c", "systemctl is-active haproxy && test -S /run/haproxy/admin.sock"],
                            capture_output=True).returncode == 0
        if ok:
            return
        time.sleep(1)
    raise AssertionError(f"HAProxy did not come back on {lb} within {timeout}s")


def restart(lb: str) -> None:
    sudo(lb, "systemctl restart haproxy")
    wait_haproxy(lb)


def reboot(lb: str) -> None:
    """A clean reboot: systemd's halt signal (every unit stopped in order), then the machine starts again."""
    docker("kill", "--signal", "SIGRTMIN+3", lb)
    deadline = time.monotonic() + 90
    while docker("inspect", "-f", "{{.State.Running}}", lb) == "true":
        assert time.monotonic() < deadline, f"{lb} did not shut down"
        time.sleep(1)
    docker("start", lb)
    wait_haproxy(lb)


@pytest.fixture
def lb():
    master = holder()
    assert master, "no load balancer holds the virtual IP"
    other = next(name for name in LBS if name != master)
    yield other
    wait_haproxy(other)
    runtime(other, f"set server ollama_nodes/{SERVER} state ready")
    wait_status(other, SERVER, "UP", timeout=60)


def test_a_node_put_back_after_a_reload_stays_in_rotation_across_a_restart(lb):
    # The sequence: maint, reload (the file now says maint), ready, restart.
    runtime(lb, f"set server ollama_nodes/{SERVER} state maint")
    sudo(lb, "systemctl reload haproxy")
    wait_haproxy(lb)
    assert admin_state(lb) & FMAINT
    runtime(lb, f"set server ollama_nodes/{SERVER} state ready")
    restart(lb)
    assert admin_state(lb) == 0, "the node put back in rotation came back in maintenance after a restart"
    wait_status(lb, SERVER, "UP", timeout=60)


def test_a_node_in_maintenance_stays_out_across_a_restart(lb):
    runtime(lb, f"set server ollama_nodes/{SERVER} state maint")
    restart(lb)
    assert admin_state(lb) & FMAINT, "the node held in maintenance came back in rotation after a restart"


@pytest.mark.parametrize("state", ["maint", "ready"])
def test_each_state_survives_a_reboot(lb, state):
    # The opposite state first, saved by a reload, so a stale file would show.
    runtime(lb, f"set server ollama_nodes/{SERVER} state {'ready' if state == 'maint' else 'maint'}")
    sudo(lb, "systemctl reload haproxy")
    wait_haproxy(lb)
    runtime(lb, f"set server ollama_nodes/{SERVER} state {state}")
    reboot(lb)
    held = bool(admin_state(lb) & FMAINT)
    print(f"\n{lb} rebooted with {SERVER} {state}: back {'in maintenance' if held else 'in rotation'}")
    assert held == (state == "maint")
