"""Rolling upgrades through the front (playbooks/upgrade.yml) under bounded streaming load: 4
clients stream chats through the virtual IP for the whole roll (at most 420 s), each answer about
2 s long (the nodes' stand-in slowed to 15 tokens/s), so streams are in flight at every drain.
Traffic goes only to this scenario's containers. The nodes run the ollama STAND-IN
(tests/ollama_standin, a test double of Ollama, not Ollama), which like real Ollama closes
in-flight streams on SIGTERM (its default `sigterm: close`).

The tests run in order and each starts from the state the one before left:
1. site.yml refuses a new version on the serving fleet and points at upgrade.yml; nothing restarts.
2. version roll 0.33.0 -> 0.33.1: 0 failed requests, 0 cut streams, both nodes on 0.33.1.
3. no-op: the same version again drains and restarts no node, 0 failed requests.
4. control: the same kind of roll (-> 0.33.2) without draining loses requests, proving the load
   and the stand-in can show a loss.
5. model digest roll A -> B (the version stays 0.33.2): 0 failed requests, every answer wholly
   A's or wholly B's; afterwards the front's health check accepts B only.
6. a release that does not start (0.33.3): the first node rolls back and serves again, the
   second is untouched, the play fails naming the node, 0 failed requests.
Printed per roll: requests, failures, each node's time out of rotation (on the load balancer that
holds the address, from DRAIN to UP again) and the roll's wall time.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys
import threading
import time

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import LBS, NODES, ROOT, Load, chat_once, client, holder, servers, slowed, sudo, wait_status  # noqa: E402
from playbook import run_playbook  # noqa: E402

testinfra_hosts = [f"ansible://{sorted(NODES)[0]}"]

FIXTURES = {
    "OLLAMA_FLEET_RELEASE_DIR": str(ROOT / ".cache/releases-rolling"),
    "OLLAMA_FLEET_MODELS_BUNDLE": str(ROOT / ".cache/models-bundle"),
    "OLLAMA_FLEET_CACHE": str(ROOT / ".cache"),
}
# Fewer timed chats in each node's verify than the production default (10), and no golden set
# (10 answers per node at the slowed 15 tokens/s, about 20 s a node a roll): these rolls prove
# that no request is lost; tests/test_canary.py turns the golden gate back on (its -e comes later).
FAST_VERIFY = ("-e", "ollama_verify_requests=3", "-e", '{"ollama_verify_golden_file": ""}')
BASE = "qwen3:4b-instruct-2507-q4_K_M"
BUNDLE_B = ROOT / ".cache/models-bundle-b"


class Monitor:
    """HAProxy's view of the nodes on one load balancer, sampled every 0.2 s (at most 600 s)
    through `docker exec` (an observer outside Ansible): for each node, (time, status, scur, qcur)."""

    def __init__(self, lb: str):
        loop = ("i=0; while [ $i -lt 3000 ]; do i=$((i+1)); date +T%s.%N; "
                "echo 'show stat' | socat -t 2 stdio unix-connect:/run/haproxy/admin.sock | grep '^ollama_nodes,'; sleep 0.2; done")
        self.proc = subprocess.Popen(["docker", "exec", lb, "sh", "-c", loop], stdout=subprocess.PIPE, text=True)
        self.samples: dict[str, list[tuple[float, str, int, int]]] = {name: [] for name in NODES}
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        now = 0.0
        for line in self.proc.stdout:
            if line.startswith("T"):
                now = float(line[1:])
                continue
            f = line.split(",")
            if len(f) > 17 and f[1] in self.samples:
                self.samples[f[1]].append((now, f[17], int(f[4] or 0), int(f[2] or 0)))

    def __enter__(self) -> "Monitor":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)

    def out_of_rotation(self, name: str) -> float:
        """Seconds from the first sample not UP to the next UP one (0 if never out)."""
        out = None
        for t, status, _scur, _qcur in self.samples[name]:
            if out is None and not status.startswith("UP"):
                out = t
            elif out is not None and status.startswith("UP"):
                return t - out
        return 0.0 if out is None else float("inf")

    def in_flight_at_drain(self, name: str) -> int:
        """Current sessions on the node in the first DRAIN sample (streams the drain had to wait for)."""
        return next((scur for _t, status, scur, _q in self.samples[name] if status.startswith("DRAIN")), -1)


def roll(*args: str, request=chat_once) -> tuple[int, str, Load, Monitor, float]:
    lb = holder()
    assert lb, "no load balancer holds the virtual IP"
    with Monitor(lb) as monitor, Load(clients=4, limit_s=420, request=request) as load:
        time.sleep(3)
        started = time.monotonic()
        rc, out = run_playbook("playbooks/upgrade.yml", *FAST_VERIFY, *args, env=FIXTURES, timeout=600)
        wall = time.monotonic() - started
        time.sleep(3)
    return rc, out, load, monitor, wall


def report(label: str, load: Load, monitor: Monitor, wall: float) -> None:
    failed = load.failed()
    print(f"\n{label}: roll {wall:.1f}s; {len(load.records)} requests through the virtual IP, {len(failed)} failed "
          f"({sorted({r[2] for r in failed})[:3]}); out of rotation: "
          + ", ".join(f"{n} {monitor.out_of_rotation(n):.1f}s (drain waited for {monitor.in_flight_at_drain(n)} streams)"
                      for n in NODES)
          + " [nodes: ollama STAND-IN]")


def version(name: str) -> str:
    return json.loads(sudo(name, f"curl -sf http://{NODES[name]}:11434/api/version"))["version"]


def main_pid(name: str) -> str:
    return sudo(name, "systemctl show -p MainPID --value ollama").strip()


def all_up() -> None:
    for lb in LBS:
        for name in NODES:
            wait_status(lb, name, "UP", timeout=90)


@pytest.fixture(scope="module", autouse=True)
def slow_nodes():
    with slowed(15):
        yield


def test_site_refuses_to_restart_a_serving_fleet():
    before = {name: main_pid(name) for name in NODES}
    rc, out = run_playbook("site.yml", "--limit", "ollama_nodes", "-e", "ollama_version=0.33.1", env=FIXTURES)
    assert rc != 0, out[-2000:]
    assert "serves customers behind the front" in out and "playbooks/upgrade.yml" in out, out[-3000:]
    assert {name: main_pid(name) for name in NODES} == before
    assert {version(name) for name in NODES} == {"0.33.0"}


def test_version_roll_loses_no_request():
    all_up()
    rc, out, load, monitor, wall = roll("-e", "ollama_version=0.33.1")
    report("version roll 0.33.0 -> 0.33.1", load, monitor, wall)
    assert rc == 0, out[-4000:]
    assert {version(name) for name in NODES} == {"0.33.1"}
    assert len(load.records) >= 20, "too little load to show anything"
    assert load.failed() == [], load.failed()[:5]
    for name in NODES:
        assert monitor.in_flight_at_drain(name) > 0, f"no stream was in flight when {name} was drained: the test proves nothing"
        assert 0 < monitor.out_of_rotation(name) < float("inf"), f"{name} never left rotation, or never came back"


def test_noop_roll_leaves_every_node_in_rotation():
    """The same pins again: upgrade.yml works out with the roles' own rules that nothing would
    change, so no node is drained or restarted (the version roll before it shows the monitor
    sees a drain when there is one)."""
    all_up()
    before = {name: main_pid(name) for name in NODES}
    rc, out, load, monitor, wall = roll("-e", "ollama_version=0.33.1")
    report("no-op roll (0.33.1 again)", load, monitor, wall)
    print(f"no-op roll: {wall / len(NODES):.1f}s per node (goal 15 s)")
    assert rc == 0, out[-4000:]
    assert out.count("nothing to change: it stays in rotation") == len(NODES), out[-4000:]
    assert {name: main_pid(name) for name in NODES} == before
    assert load.failed() == [], load.failed()[:5]
    for name in NODES:
        assert monitor.samples[name], f"the monitor saw nothing of {name}: the test proves nothing"
        assert monitor.out_of_rotation(name) == 0.0, f"{name} left rotation although nothing changed"


def test_control_roll_without_draining_loses_requests():
    all_up()
    rc, out, load, monitor, wall = roll("-e", "ollama_version=0.33.2", "-e", "upgrade_drain=false")
    report("CONTROL roll 0.33.1 -> 0.33.2 without draining", load, monitor, wall)
    assert {version(name) for name in NODES} == {"0.33.2"}, out[-3000:]
    assert len(load.failed()) > 0, "restarting nodes in rotation lost nothing: the load cannot show a loss"


def test_model_digest_roll_answers_wholly_from_one_model():
    all_up()
    with client() as http:
        answer_a = chat_once(http)
    digest_b = hashlib.sha256((BUNDLE_B / "manifests/registry.ollama.ai/library/qwen3/4b-instruct-2507-q4_K_M").read_bytes()).hexdigest()
    lab = yaml.safe_load((ROOT / "inventories/lab/group_vars/ollama_nodes/10-lab.yml").read_text())
    pins = [dict(pin, digest=f"sha256:{digest_b}", bundle=str(BUNDLE_B)) if pin["name"] == BASE else pin
            for pin in lab["ollama_models_list"]]
    assert any(pin["digest"].endswith(digest_b) for pin in pins)
    texts: list[str] = []

    def request(http) -> None:
        texts.append(chat_once(http))

    rc, out, load, monitor, wall = roll("-e", json.dumps({"ollama_models_list": pins, "ollama_version": "0.33.2"}), request=request)
    report("model digest roll A -> B", load, monitor, wall)
    assert rc == 0, out[-4000:]
    with client() as http:
        answer_b = chat_once(http)
    assert answer_b != answer_a, "the two pins answer alike: the test cannot tell them apart"
    assert {version(name) for name in NODES} == {"0.33.2"}  # only the pin moved
    mixed = [t for t in texts if t not in (answer_a, answer_b)]
    print(f"answers: {texts.count(answer_a)} wholly from A, {texts.count(answer_b)} wholly from B, {len(mixed)} neither")
    assert load.failed() == [], load.failed()[:5]
    assert mixed == [], mixed[:3]
    assert texts.count(answer_a) > 0 and texts.count(answer_b) > 0
    for lb in LBS:  # after the roll only the new pin counts as healthy
        check = sudo(lb, "grep 'http-check expect' /etc/haproxy/haproxy.cfg")
        assert digest_b in check and len(check.split("rstring", 1)[1].split("|")) == 1, check


def test_release_that_does_not_start_is_rolled_back_and_stops_the_roll():
    all_up()
    first, second = sorted(NODES)
    pid_second = main_pid(second)
    rc, out, load, monitor, wall = roll("-e", "ollama_version=0.33.3")
    report("roll to 0.33.3, which does not start", load, monitor, wall)
    assert rc != 0
    assert f"Upgrade stopped at {first}" in out and "is back in rotation" in out, out[-4000:]
    assert "refuses to start" in out  # the journal of the failed start, in the reason
    assert version(first) == "0.33.2"
    for lb in LBS:
        assert servers(lb)[first]["status"].startswith("UP")
    assert version(second) == "0.33.2" and main_pid(second) == pid_second
    assert sudo(second, "test -e /opt/ollama/versions/0.33.3 && echo staged || echo untouched").strip() == "untouched"
    assert load.failed() == [], load.failed()[:5]
