#!/usr/bin/env python3
"""Overhead of the ollama_verify first-token measurement (not collected by pytest).

Against one ollama STAND-IN on 127.0.0.1 (a test double, not Ollama), alternately measures the
time to first token with ollama_verify_probe.probe_once (http.client, JSON parsing per line) and
with a raw socket that stops at the first received bytes carrying non-empty "content". Prints
both medians, their ratio and the difference in ms. Goal: under 5 ms added by the harness.

    .venv/bin/python tests/bench/bench_verify_overhead.py [--rounds 200] [--first-token-ms 20]
"""

import argparse
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
sys.path.insert(0, str(ROOT / "plugins" / "modules"))

import ollama_verify_probe as probe  # noqa: E402
from test_ollama_verify_probe import INSTRUCT, Server  # noqa: E402

CONTENT = re.compile(rb'"content":"[^"]')


def raw_first_token(host, port, model, prompt):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}).encode()
    request = (
        "POST /api/chat HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        "Connection: close\r\n\r\n" % (host, port, len(body))
    ).encode() + body
    started = time.perf_counter()
    sock = socket.create_connection((host, port))
    try:
        sock.sendall(request)
        seen = b""
        while True:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("no content chunk")
            seen += data
            if CONTENT.search(seen):
                return time.perf_counter() - started
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--first-token-ms", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(pathlib.Path(tmp))
        try:
            server.knobs(first_token_ms=args.first_token_ms)
            host, port = server.url[7:].split(":")
            port = int(port)
            for _ in range(5):  # warm both paths and the model
                probe.probe_once(server.url, INSTRUCT, "warm", 10)
                raw_first_token(host, port, INSTRUCT, "warm")
            harness, raw = [], []
            for i in range(args.rounds):
                prompt = "round %d" % i
                sample = probe.probe_once(server.url, INSTRUCT, prompt, 10)
                if sample["error"]:
                    raise SystemExit("probe error: %s" % sample["error"])
                harness.append(sample["ttft_s"])
                raw.append(raw_first_token(host, port, INSTRUCT, prompt))
        finally:
            server.stop()
    h, r = statistics.median(harness), statistics.median(raw)
    print("server: ollama stand-in 0.33.0 on 127.0.0.1 (test double), first_token_ms=%g, rounds=%d" % (args.first_token_ms, args.rounds))
    print("time to first token, median: harness %.3f ms, raw socket %.3f ms" % (h * 1e3, r * 1e3))
    print("p95: harness %.3f ms, raw socket %.3f ms" % (probe.percentile(harness, 95) * 1e3, probe.percentile(raw, 95) * 1e3))
    print("ratio harness/raw: %.3f; added by the harness: %.3f ms (goal < 5 ms): %s"
          % (h / r, (h - r) * 1e3, "OK" if (h - r) * 1e3 < 5 else "OVER"))


if __name__ == "__main__":
    main()
