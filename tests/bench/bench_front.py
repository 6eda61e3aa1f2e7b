#!/usr/bin/env python3
"""Benchmark of the failover front on the lab (not a test: pytest does not collect bench_*.py).

    scripts/lab.sh up && .venv/bin/python tests/bench/bench_front.py [--requests 30] [--streams 4] [--seconds 15]

Prints ratios from one run, all against the lab's own containers:
  1. first-token latency through the front (TLS, API key, HAProxy on the virtual IP, the edge's
     body inspection: wait-for-body and the field rules) vs directly to a node's 11434, median of
     N sequential streamed chats, both measured on the load balancer that holds the address (the
     nodes' firewall admits load balancers only, and the lab's front admits only the controller
     from outside): the difference is what TLS, the key check, the inspection and the HAProxy hop
     add; short chats on a new connection each (a TLS handshake each) and on one kept connection
     (as the platform's HTTP client keeps it), then long chats on a kept connection (a history of
     --history-kb, default 160 KiB, under the edge's 256 KiB body limit), where the inspection
     reads the most;
  2. throughput (streamed tokens/s) of S concurrent streams through the front vs directly (the
     streams spread over both nodes as the front spreads them);
  3. the median gap of 5 VRRP failovers: the holder frozen (`docker pause`, a machine that died
     without a word; a graceful keepalived stop hands over in milliseconds), /api/version polled
     through the virtual IP from the controller every 20 ms, time without an answer.
The stand-in streams at 50 tokens/s during the measurements (its knob), a rate a GPU serves a 4B
model at, so throughput is the front's, not the stand-in's CPU race.
The nodes run the ollama STAND-IN (tests/ollama_standin, a test double): the figures are the
front's cost and failover time, not a model's speed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1].parent
LAB = ROOT / ".cache" / "lab"
VIP = "172.28.10.100"
NODES = ["172.28.10.11", "172.28.10.12"]
LBS = ["lab-lb1", "lab-lb2"]

# Runs inside PROBE_HOST (stdlib only): sequential first-token timings, then concurrent streams.
REMOTE = r'''
import http.client, json, ssl, statistics, sys, threading, time
cfg = json.loads(sys.argv[1])
ctx = ssl.create_default_context(cafile=cfg["ca"])
def conn(base):
    host, port = base["host"], base["port"]
    if base["tls"]:
        return http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
    return http.client.HTTPConnection(host, port, timeout=60)
def chat(base, history=0, c=None):
    messages = [{"role": "user", "content": "Hello"}]
    if history:
        messages = [{"role": "user", "content": "Earlier: " + "x" * history}, {"role": "assistant", "content": "Noted."}] + messages
    body = json.dumps({"model": cfg["model"], "stream": True, "messages": messages,
                       "options": {"num_predict": cfg["tokens"]}})
    keep = c is not None
    c = c or conn(base); t0 = time.perf_counter(); first = None; tokens = 0
    c.request("POST", "/api/chat", body, dict(base["headers"], **{"Content-Type": "application/json"}))
    r = c.getresponse(); assert r.status == 200, r.status
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk: break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip(): continue
            msg = json.loads(line)
            if msg.get("message", {}).get("content"):
                tokens += 1
                if first is None: first = time.perf_counter() - t0
    if not keep: c.close()
    return first, tokens
out = {}
for name, bases in cfg["paths"].items():
    ttft = [chat(bases[i % len(bases)])[0] for i in range(cfg["requests"])]
    # A client that keeps its connection (as the platform's HTTP client does): no TLS handshake per request.
    kept = [conn(b) for b in bases]
    ttft_kept = [chat(bases[i % len(bases)], 0, kept[i % len(bases)])[0] for i in range(cfg["requests"])]
    ttft_long = [chat(bases[i % len(bases)], cfg["history"], kept[i % len(bases)])[0] for i in range(cfg["requests"])]
    [c.close() for c in kept]
    total = [0]; lock = threading.Lock(); stop = time.perf_counter() + cfg["seconds"]
    def worker(i):
        while time.perf_counter() < stop:
            _, n = chat(bases[i % len(bases)])
            with lock: total[0] += n
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(cfg["streams"])]
    t0 = time.perf_counter(); [t.start() for t in threads]; [t.join() for t in threads]
    out[name] = {"ttft_median_s": statistics.median(ttft), "ttft_kept_median_s": statistics.median(ttft_kept),
                 "ttft_long_median_s": statistics.median(ttft_long),
                 "tokens_per_s": total[0] / (time.perf_counter() - t0)}
print(json.dumps(out))
'''


def holder() -> str | None:
    for lb in LBS:
        out = subprocess.run(["docker", "exec", lb, "ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
        if f" {VIP}/" in out:
            return lb
    return None


def answers(ctx: ssl.SSLContext, key: str) -> bool:
    req = urllib.request.Request(f"https://{VIP}/api/version", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=0.2, context=ctx) as resp:
            return resp.status == 200
    except OSError:
        return False


def failover_gap(ctx: ssl.SSLContext, key: str) -> float:
    """Freeze the holder; seconds without an answer through the virtual IP until the other takes over."""
    lb = holder()
    assert lb, "no load balancer holds the virtual IP"
    assert answers(ctx, key), "the front does not answer before the failover"
    start = time.monotonic()
    subprocess.run(["docker", "pause", lb], check=True, capture_output=True)
    last_ok, seen_fail, deadline = start, False, start + 30
    while time.monotonic() < deadline:
        if answers(ctx, key):
            if seen_fail:
                break
            last_ok = time.monotonic()
        else:
            seen_fail = True
        time.sleep(0.02)
    gap = time.monotonic() - last_ok if seen_fail else 0.0
    subprocess.run(["docker", "unpause", lb], check=True, capture_output=True)
    time.sleep(5)  # let the pair settle (one MASTER, one BACKUP) before the next failover
    return gap


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--history-kb", type=int, default=160)
    args = ap.parse_args()
    key = (LAB / "api-key").read_text().strip()
    probe_host = holder()
    assert probe_host, "no load balancer holds the virtual IP: is the lab up (scripts/lab.sh up)?"
    subprocess.run(["docker", "cp", str(LAB / "tls" / "ca.crt"), f"{probe_host}:/var/tmp/bench-ca.crt"], check=True)
    cfg = {"ca": "/var/tmp/bench-ca.crt", "model": "qwen3-cs", "tokens": 40, "requests": args.requests,
           "history": args.history_kb * 1024,
           "streams": args.streams, "seconds": args.seconds, "paths": {
               "front": [{"host": VIP, "port": 443, "tls": True, "headers": {"Authorization": f"Bearer {key}"}}],
               "direct": [{"host": n, "port": 11434, "tls": False, "headers": {}} for n in NODES]}}
    knob = "mkdir -p /etc/ollama-standin && echo '{\"tokens_per_second\": 50}' > /etc/ollama-standin/control.json"
    for name in ("lab-node1", "lab-node2"):
        subprocess.run(["docker", "exec", name, "sh", "-c", knob], check=True)
    try:
        run = subprocess.run(["docker", "exec", probe_host, "python3", "-c", REMOTE, json.dumps(cfg)],
                             capture_output=True, text=True, timeout=600)
    finally:
        for name in ("lab-node1", "lab-node2"):
            subprocess.run(["docker", "exec", name, "rm", "-f", "/etc/ollama-standin/control.json"], check=True)
    if run.returncode != 0:
        sys.exit(run.stderr[-3000:])
    res = json.loads(run.stdout)
    ctx = ssl.create_default_context(cafile=str(LAB / "tls" / "ca.crt"))
    gaps = [failover_gap(ctx, key) for _ in range(args.failovers)]
    front, direct = res["front"], res["direct"]
    print(f"the lab's front (HAProxy + keepalived; Ollama = stand-in test double), measured on {probe_host}")
    def ttft(label: str, field: str) -> None:
        f, d = front[field] * 1000, direct[field] * 1000
        print(f"  first token, {label}, median of {args.requests}: front {f:.1f} ms, direct {d:.1f} ms, "
              f"added {f - d:.1f} ms   (goal < 5 ms)")
    ttft("a new connection each (TLS handshake included)", "ttft_median_s")
    ttft("one kept connection", "ttft_kept_median_s")
    ttft(f"one kept connection, {args.history_kb} KiB history", "ttft_long_median_s")
    print(f"  throughput, {args.streams} streams for {args.seconds:.0f} s: front {front['tokens_per_s']:.1f} tok/s, "
          f"direct {direct['tokens_per_s']:.1f} tok/s, ratio {front['tokens_per_s'] / direct['tokens_per_s']:.3f}   (goal >= 0.95)")
    if gaps:
        print(f"  VRRP failover gaps (holder frozen): {', '.join(f'{g:.2f}' for g in gaps)} s; "
              f"median {statistics.median(gaps):.2f} s   (goal <= 4 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
