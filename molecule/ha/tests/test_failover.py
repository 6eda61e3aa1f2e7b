"""Failover under bounded load through the virtual IP (4 concurrent clients, at most 60 s each,
traffic only to this scenario's containers). Nodes run the ollama STAND-IN, slowed to 20 tokens/s
so a streamed answer of 40 tokens lasts about 2 s.

- Node loss: SIGKILL of Ollama on ha-node1 under streaming load. Streams in flight on that node
  are cut (they cannot be saved; counted and printed); every request that started after the kill
  must succeed (connection failures are retried on the other node). Printed: time until HAProxy
  marks the node DOWN, and until it is UP and takes traffic again after a restart.
- Load-balancer loss: HAProxy stopped on the holder of the virtual IP, and separately the holder's
  container frozen (`docker pause`: a dead machine): the address moves to the other load balancer.
  The gap without answers is measured and printed against the goal (<= 4 s; its median over 5
  failovers is tests/bench/bench_front.py's), failed requests counted, and requests must succeed
  again after it.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import AUTH, LBS, NODES, Load, VIP, holder, node, servers, slowed, sudo, wait_status  # noqa: E402

testinfra_hosts = ["ansible://ha-node1"]

GAP_GOAL_S = 4.0  # the goal for a failover gap, printed beside each measurement
# What the test asserts: the address moved within a bound that a broken failover (no takeover,
# a takeover after many adverts) cannot meet. The goal itself is a timing on a loaded 2-core
# machine (VRRP takeover is 3 x advert_int + skew, about 3.6 s, plus the probe's 1 s timeout), so
# it is measured as a median over 5 failovers by tests/bench/bench_front.py, not asserted per run.
GAP_BOUND_S = 8.0


@pytest.fixture
def slow_nodes():
    with slowed(20):
        yield


def version_once(http) -> None:
    response = http.get("/api/version", headers=AUTH, timeout=1.0)
    response.raise_for_status()


def longest_gap(records, since: float) -> float:
    """Longest time between two consecutive successful answers (by end time) after `since`."""
    ends = sorted(end for start, end, error in records if error is None and end >= since - 1)
    return max((b - a for a, b in zip(ends, ends[1:])), default=float("inf"))


def test_node_loss_under_load(slow_nodes):
    lb = holder()
    assert lb, "no load balancer holds the virtual IP"
    try:
        with Load(clients=4, limit_s=60) as load:
            time.sleep(6)
            sudo("ha-node1", "systemctl kill -s KILL ollama; systemctl stop ollama")
            # Taken once the command returned (an SSH round trip after it was sent): a request that
            # started before this instant may have reached the node before it died, and is counted
            # as in flight, not as "after the kill".
            killed = time.monotonic()
            down_s = wait_status(lb, "ha-node1", "DOWN", timeout=30)
            time.sleep(3)
            restarted = time.monotonic()
            sudo("ha-node1", "systemctl start ollama")
            up_s = wait_status(lb, "ha-node1", "UP", timeout=60)
            served = int(servers(lb)["ha-node1"]["stot"])
            deadline = time.monotonic() + 20
            while int(servers(lb)["ha-node1"]["stot"]) == served and time.monotonic() < deadline:
                time.sleep(0.2)
            traffic_s = time.monotonic() - restarted
            time.sleep(2)
    finally:
        sudo("ha-node1", "systemctl start ollama")
    cut = [r for r in load.records if r[0] < killed and r[2] is not None]
    after = [r for r in load.records if r[0] >= killed]
    print(f"\nnode loss: {len(load.records)} requests, {len(cut)} in flight on ha-node1 cut by the kill "
          f"({sorted({r[2] for r in cut})}); DOWN in HAProxy {down_s:.1f}s after the kill; "
          f"after restart UP in {up_s:.1f}s, taking traffic {traffic_s:.1f}s after the start; "
          f"{len(after)} requests started after the kill, {sum(r[2] is not None for r in after)} failed")
    assert after, "no request started after the kill"
    assert all(r[2] is None for r in after), [r[2] for r in after if r[2]]
    assert int(servers(lb)["ha-node1"]["stot"]) > served, "ha-node1 took no traffic after its restart"


def take_over(break_it, repair_it, label: str) -> None:
    master = holder()
    assert master, "no load balancer holds the virtual IP"
    backup = next(name for name in LBS if name != master)
    try:
        with Load(clients=4, limit_s=60, request=version_once) as load:
            time.sleep(3)
            broken = time.monotonic()
            break_it(master)
            deadline = time.monotonic() + 30
            while node(backup).run(f"ip -o -4 addr show | grep -qw '{VIP}/24'").rc != 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            moved_s = time.monotonic() - broken
            time.sleep(5)
    finally:
        repair_it(master)
    gap = longest_gap(load.records, broken)
    failed = [r for r in load.records if r[2] is not None]
    late = [r for r in load.records if r[0] >= broken + gap + 1]
    print(f"\n{label}: address on {backup} {moved_s:.1f}s after the break; longest gap without answers {gap:.2f}s "
          f"(goal <= {GAP_GOAL_S}s); {len(failed)} of {len(load.records)} requests failed")
    assert moved_s < 30, f"the virtual IP did not move to {backup}"
    assert late and all(r[2] is None for r in late), [r[2] for r in late if r[2]][:5]
    assert gap <= GAP_BOUND_S, f"failover gap {gap:.2f}s: the takeover took far longer than VRRP's ~3.6 s"


def test_haproxy_stopped_on_the_holder_moves_the_address():
    take_over(lambda lb: sudo(lb, "systemctl stop haproxy"), lambda lb: sudo(lb, "systemctl start haproxy"),
              "HAProxy stopped on the holder")


def test_holder_machine_lost_moves_the_address():
    # `docker pause` freezes every process of the container, as a machine that died would.
    take_over(lambda lb: subprocess.run(["docker", "pause", lb], check=True),
              lambda lb: subprocess.run(["docker", "unpause", lb], check=True),
              "load balancer frozen")
    time.sleep(5)
    assert sum(node(name).run(f"ip -o -4 addr show | grep -qw '{VIP}/24'").rc == 0 for name in LBS) == 1
