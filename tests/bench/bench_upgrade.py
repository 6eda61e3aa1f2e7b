#!/usr/bin/env python3
"""Benchmark of the rolling upgrade on the lab (not a test: pytest does not collect bench_*.py).

    scripts/lab.sh up && .venv/bin/python tests/bench/bench_upgrade.py [--version 0.33.1] [--clients 4]

While `clients` threads stream chats through the virtual IP (about 2 s each: the stand-in slowed
to 15 tokens/s), runs `playbooks/upgrade.yml -i inventories/lab -e ollama_version=<version>`, then
rolls back to the inventory's version the same way, and prints from one run:
  1. per node, the time out of rotation (DRAIN to UP again, sampled every 0.2 s on the load
     balancer holding the address) against a plain restart + verify of that node with the load
     stopped (`systemctl restart ollama` until /api/version answers, then `playbooks/verify.yml -l
     <node>` with the same request count): goal <= 1.2x, reachable only because the release and the
     models were staged before the drain;
  2. the whole roll's wall time for the lab's 2 nodes, and the requests through the virtual IP that
     failed during each roll (the lab acceptance: the client sees no error).
The nodes run the ollama STAND-IN (tests/ollama_standin, a test double): the figures are the
roll's orchestration cost, not a model's load time.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB = ROOT / ".cache" / "lab"
VIP = "172.28.10.100"
NODES = {"lab-node1": "172.28.10.11", "lab-node2": "172.28.10.12"}
LBS = ["lab-lb1", "lab-lb2"]
VERIFY_REQUESTS = "3"


def sh(container: str, command: str) -> str:
    return subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, check=True).stdout


def holder() -> str | None:
    for lb in LBS:
        if f" {VIP}/" in sh(lb, "ip -o -4 addr show"):
            return lb
    return None


class Load:
    """Threads streaming chats through the virtual IP until stopped (at most 600 s)."""

    def __init__(self, clients: int):
        self.ctx = ssl.create_default_context(cafile=str(LAB / "tls" / "ca.crt"))
        self.key = (LAB / "api-key").read_text().strip()
        self.ok = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]

    def chat(self) -> None:
        body = json.dumps({"model": "qwen3-cs", "stream": True, "options": {"num_predict": 40},
                           "messages": [{"role": "user", "content": "Where is my parcel?"}]}).encode()
        req = urllib.request.Request(f"https://{VIP}/api/chat", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60, context=self.ctx) as resp:
            last = {}
            for line in resp:
                if line.strip():
                    last = json.loads(line)
                    if last.get("error"):
                        raise RuntimeError(last["error"])
            if not last.get("done"):
                raise RuntimeError("stream ended before done")

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.chat()
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


class Monitor:
    """(time, status) of each node in HAProxy on one load balancer, every 0.2 s, via docker exec."""

    def __init__(self, lb: str):
        loop = ("i=0; while [ $i -lt 3000 ]; do i=$((i+1)); date +T%s.%N; echo 'show stat' | "
                "socat -t 2 stdio unix-connect:/run/haproxy/admin.sock | grep '^ollama_nodes,'; sleep 0.2; done")
        self.proc = subprocess.Popen(["docker", "exec", lb, "sh", "-c", loop], stdout=subprocess.PIPE, text=True)
        self.samples: dict[str, list[tuple[float, str]]] = {n: [] for n in NODES}
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self) -> None:
        now = 0.0
        for line in self.proc.stdout:
            if line.startswith("T"):
                now = float(line[1:])
            else:
                f = line.split(",")
                if len(f) > 17 and f[1] in self.samples:
                    self.samples[f[1]].append((now, f[17]))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def out_of_rotation(self, node: str) -> float:
        out = None
        for t, status in self.samples[node]:
            if out is None and not status.startswith("UP"):
                out = t
            elif out is not None and status.startswith("UP"):
                return t - out
        return 0.0 if out is None else float("inf")


def playbook(*args: str) -> tuple[int, float, str]:
    started = time.monotonic()
    run = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventories/lab", *args],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "ANSIBLE_FORCE_COLOR": "false"})
    return run.returncode, time.monotonic() - started, run.stdout + run.stderr


def roll(version: str | None, clients: int) -> dict:
    lb = holder()
    assert lb, "no load balancer holds the virtual IP: is the lab up (scripts/lab.sh up)?"
    monitor = Monitor(lb)
    extra = ["-e", f"ollama_version={version}"] if version else []
    with Load(clients) as load:
        time.sleep(3)
        rc, wall, out = playbook("playbooks/upgrade.yml", "-e", f"ollama_verify_requests={VERIFY_REQUESTS}", *extra)
        time.sleep(2)
    monitor.close()
    if rc != 0:
        sys.exit(f"upgrade.yml failed (rc {rc}):\n{out[-4000:]}")
    return {"wall": wall, "out": {n: monitor.out_of_rotation(n) for n in NODES}, "ok": load.ok, "errors": load.errors}


def restart_and_verify(node: str) -> float:
    """Seconds for a plain restart (until /api/version answers) plus verify.yml on that node."""
    started = time.monotonic()
    sh(node, "systemctl restart ollama")
    while subprocess.run(["docker", "exec", node, "curl", "-sf", f"http://{NODES[node]}:11434/api/version"],
                         capture_output=True).returncode != 0:
        time.sleep(0.1)
    rc, _wall, out = playbook("playbooks/verify.yml", "-l", node, "-e", "verify_front=false",
                              "-e", f"ollama_verify_requests={VERIFY_REQUESTS}")
    if rc != 0:
        sys.exit(f"verify.yml failed on {node}:\n{out[-3000:]}")
    return time.monotonic() - started


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", default="0.33.1", help="the version to roll to (then back to the inventory's)")
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    release = ROOT / ".cache" / "releases" / args.version
    subprocess.run([sys.executable, str(ROOT / "tests/ollama_standin/build_release.py"), "--version", args.version,
                    "--out", str(release)], check=True, capture_output=True)
    for node in NODES:
        sh(node, "mkdir -p /etc/ollama-standin && echo '{\"tokens_per_second\": 15}' > /etc/ollama-standin/control.json")
    try:
        forward = roll(args.version, args.clients)
        baseline = {node: restart_and_verify(node) for node in NODES}
        back = roll(None, args.clients)
    finally:
        for node in NODES:
            sh(node, "rm -f /etc/ollama-standin/control.json")
    print("rolling upgrade on the lab (nodes: ollama STAND-IN, a test double; 2 nodes, one at a time)")
    for label, r in (("roll to " + args.version, forward), ("roll back to the inventory's version", back)):
        print(f"  {label}: {r['wall']:.1f}s for 2 nodes; {r['ok']} requests through the virtual IP, {len(r['errors'])} failed"
              + (f" ({sorted(set(r['errors']))[:3]})" if r["errors"] else ""))
        for node in NODES:
            print(f"    {node}: out of rotation {r['out'][node]:.1f}s vs plain restart + verify {baseline[node]:.1f}s:"
                  f" ratio {r['out'][node] / baseline[node]:.2f} (goal <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
