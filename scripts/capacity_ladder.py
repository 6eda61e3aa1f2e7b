#!/usr/bin/env python3
"""Capacity ladder through the front: how many customers does this fleet carry within the
first-token limit, and what should ollama_num_parallel and the front's limits be?

    OLLAMA_FLEET_API_KEY=... scripts/capacity_ladder.py --url https://10.20.0.100 --model qwen3-cs \\
        --ca-file site-ca.pem --nodes 2 --num-parallel 2 --front-metrics http://10.20.0.100:8405/metrics \\
        --out .cache/capacity

(or --key-file FILE; the key is sent as `Authorization: Bearer` and never printed). For each
concurrency level it streams the site's prompts (a JSONL file, default scripts/capacity_prompts.jsonl:
one {"prompt": ...} or {"messages": [...]} per line) from that many clients at once, for a bounded
time and number of requests, timed by the deploy gate's own code (plugins/modules/ollama_verify_probe.py:
first visible token, inter-token time, end to end, server-reported tokens). Per level it reports
first-token p50/p95, inter-token latency p50, end-to-end p95, tokens/s (all clients together),
errors and the front's queue (the most requests HAProxy's exporter showed waiting, with
--front-metrics). The answer is the highest concurrency whose p95 first token is within the limit
with no error. It stops by itself: at most 12 levels, each at most 300 s and 2000 requests, and it
stops climbing after --stop-after failing levels in a row. It writes capacity.json and
capacity.png (p95 first token and throughput against concurrency, the limit drawn; needs
matplotlib, in requirements.txt) and suggests ollama_num_parallel and the front's limits.

Answers that come from the ollama stand-in (tests/ollama_standin, a test double) are recognised by
their "[ollama stand-in]" prefix, and then every line printed and the picture say "ollama STAND-IN".
Stdlib only (plus matplotlib for the picture).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAX_LEVELS, MAX_CONCURRENCY, MAX_DURATION_S, MAX_REQUESTS = 12, 256, 300.0, 2000
STANDIN_MARK = "[ollama stand-in]"


def load_probe():
    """The deploy gate's probe (plugins/modules/ollama_verify_probe.py), imported by path as the
    node's metrics script does; its golden import is found beside it in plugins/module_utils."""
    sys.path.insert(0, os.path.join(ROOT, "plugins", "module_utils"))
    spec = importlib.util.spec_from_file_location("ollama_verify_probe", os.path.join(ROOT, "plugins", "modules", "ollama_verify_probe.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


probe = load_probe()


def read_prompts(path):
    """The chat messages of each JSONL line ({"prompt": text} or {"messages": [...]})."""
    prompts = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if isinstance(item.get("messages"), list) and item["messages"]:
                prompts.append(item["messages"])
            elif isinstance(item.get("prompt"), str) and item["prompt"].strip():
                prompts.append([{"role": "user", "content": item["prompt"]}])
            else:
                raise SystemExit("%s:%d: each line needs a prompt or messages" % (path, number))
    if not prompts:
        raise SystemExit("%s: no prompts" % path)
    return prompts


def front_queue(url, timeout_s=2.0):
    """Requests waiting in HAProxy's queues now: the sum of haproxy_backend_current_queue in the
    exporter's text (its Prometheus endpoint). None when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read(8 << 20).decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return queue_from_metrics(text)


def queue_from_metrics(text):
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith("haproxy_backend_current_queue"):
            try:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
            except (IndexError, ValueError):
                continue
    return int(total) if seen else None


class QueueSampler:
    """Samples the front's queue every 0.5 s while a level runs; keeps the largest value."""

    def __init__(self, url):
        self.url, self.most, self.samples = url, None, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            value = front_queue(self.url)
            if value is not None:
                self.samples += 1
                self.most = value if self.most is None else max(self.most, value)
            self.stop.wait(0.5)

    def __enter__(self):
        if self.url:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.url:
            self.thread.join(5)


def run_level(args, prompts, concurrency, headers):
    """Stream prompts from `concurrency` clients for args.duration_s or args.max_requests; the samples."""
    samples, lock = [], threading.Lock()
    issued = [0]
    deadline = time.monotonic() + args.duration_s

    def client(index):
        while True:
            with lock:
                if issued[0] >= args.max_requests or time.monotonic() >= deadline:
                    return
                n = issued[0]
                issued[0] += 1
            messages = prompts[(n + index) % len(prompts)]
            sample = probe.probe_once(args.url, args.model, "", args.timeout_s, num_predict=args.num_predict,
                                      headers=headers, ca_file=args.ca_file, messages=messages, keep_answer=True,
                                      think=args.think)
            with lock:
                samples.append(sample)

    started = time.monotonic()
    with QueueSampler(args.front_metrics) as sampler:
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.duration_s + args.timeout_s + 5)
    wall = time.monotonic() - started
    return samples, wall, sampler.most


def level_stats(concurrency, samples, wall, queue_max, limit_s):
    ok = [s for s in samples if s["error"] is None]
    errors = [s["error"] for s in samples if s["error"] is not None]
    tokens = sum(s["eval_count"] or 0 for s in ok)
    stats = {
        "concurrency": concurrency,
        "requests": len(samples),
        "errors": len(errors),
        "error_messages": sorted(set(errors))[:3],
        "ttft_p50_s": probe.percentile([s["ttft_s"] for s in ok], 50),
        "ttft_p95_s": probe.percentile([s["ttft_s"] for s in ok], 95),
        "itl_p50_s": probe.percentile([s["itl_s"] for s in ok if s["itl_s"] is not None], 50),
        "e2e_p95_s": probe.percentile([s["total_s"] for s in ok], 95),
        "tokens_per_s": tokens / wall if wall > 0 else None,
        "stream_tokens_per_s_p50": probe.percentile([s["tokens_per_s"] for s in ok if s["tokens_per_s"]], 50),
        "front_queue_max": queue_max,
        "wall_s": wall,
        "standin": any((s.get("answer") or "").startswith(STANDIN_MARK) for s in ok),
    }
    stats["within_limit"] = bool(ok) and not errors and stats["ttft_p95_s"] is not None and stats["ttft_p95_s"] <= limit_s
    return stats


def suggest(levels, answer, nodes, num_parallel, limit_s):
    """ollama_num_parallel and the front's limits for the hardware the ladder ran on."""
    if not answer:
        return {"customers": 0, "text": ["No level met the limit: even one customer at a time waits more than %.1fs for "
                                         "the first token or fails. Check the nodes (verify.yml) before sizing." % limit_s]}
    best = next(level for level in levels if level["concurrency"] == answer)
    per_node = int(math.ceil(answer / float(max(nodes, 1))))
    slot_bound = num_parallel is not None and answer >= nodes * num_parallel
    text = ["The fleet carries %d customers at once within %.1fs to the first token (p95 %.3fs, %.0f tokens/s in all, "
            "%s tokens/s per stream)." % (answer, limit_s, best["ttft_p95_s"], best["tokens_per_s"] or 0,
                                          "%.1f" % best["stream_tokens_per_s_p50"] if best["stream_tokens_per_s_p50"] else "-")]
    if slot_bound:
        parallel = num_parallel * 2
        text.append("The limit is the slots: %d nodes x ollama_num_parallel %d = %d streams at once, the next customer waits "
                    "in the queue. Try ollama_num_parallel %d and run the ladder again; keep it while the answer grows and "
                    "the tokens/s per stream stays readable (about 10 or more)." % (nodes, num_parallel, nodes * num_parallel, parallel))
    else:
        parallel = per_node
        text.append("The limit is the hardware's speed, not the slots: ollama_num_parallel %d per node (%d customers over %d "
                    "nodes) is enough; more slots would only share the GPU thinner." % (per_node, answer, nodes))
    queue_s = max(limit_s - (best["ttft_p50_s"] or 0.0), 0.1)
    text.append("Front: per-server maxconn follows ollama_num_parallel (the haproxy role sets it); "
                "haproxy_api_key_max_in_flight for the platform's key <= %d (more at once get 429 at once instead of a "
                "first token later than %.1fs); haproxy_timeout_queue about %.1fs (a request that cannot start within "
                "the limit gets 503 and Retry-After, for the platform to retry or hand to a person)." % (answer, limit_s, queue_s))
    return {"customers": answer, "ollama_num_parallel": parallel, "slot_bound": slot_bound,
            "haproxy_api_key_max_in_flight": answer, "haproxy_timeout_queue_s": round(queue_s, 1), "text": text}


def fmt(value, pattern="%.3f"):
    return pattern % value if value is not None else "-"


def table(levels, origin):
    lines = ["Capacity ladder (%s): per level p50/p95 first visible token, inter-token p50, end-to-end p95, tokens/s of all "
             "streams, errors, most requests in the front's queue" % origin,
             "%6s %6s %9s %9s %9s %9s %9s %6s %6s %s" % ("CONC", "REQS", "TTFT p50", "TTFT p95", "ITL p50", "E2E p95",
                                                       "TOK/S", "ERRS", "QUEUE", "RESULT")]
    for lv in levels:
        lines.append("%6d %6d %9s %9s %9s %9s %9s %6d %6s %s" % (
            lv["concurrency"], lv["requests"], fmt(lv["ttft_p50_s"]), fmt(lv["ttft_p95_s"]), fmt(lv["itl_p50_s"]),
            fmt(lv["e2e_p95_s"]), fmt(lv["tokens_per_s"], "%.1f"), lv["errors"],
            "-" if lv["front_queue_max"] is None else str(lv["front_queue_max"]),
            "within" if lv["within_limit"] else "OVER" + (" (%s)" % "; ".join(lv["error_messages"]) if lv["errors"] else "")))
    return lines


def picture(path, levels, answer, limit_s, title):
    """capacity.png: p95 first token (left axis, the limit drawn) and tokens/s (right) against concurrency."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no picture: matplotlib is not installed (pip install -r requirements.txt)"
    xs = [lv["concurrency"] for lv in levels]
    fig, left = plt.subplots(figsize=(8, 4.8), dpi=110)
    left.plot(xs, [lv["ttft_p95_s"] if lv["ttft_p95_s"] is not None else float("nan") for lv in levels],
              "o-", color="tab:blue", label="p95 first token (s)")
    left.axhline(limit_s, color="tab:red", linestyle="--", label="limit %.1fs" % limit_s)
    if answer:
        left.axvline(answer, color="tab:green", linestyle=":", label="answer: %d at once" % answer)
    for lv in levels:
        if lv["errors"]:
            left.annotate("%d errors" % lv["errors"], (lv["concurrency"], lv["ttft_p95_s"] or limit_s), color="tab:red", fontsize=8)
    left.set_xlabel("concurrent customers (streams through the front)")
    left.set_ylabel("p95 time to first visible token (s)")
    left.set_xticks(xs)
    right = left.twinx()
    right.plot(xs, [lv["tokens_per_s"] or 0 for lv in levels], "s-", color="tab:orange", label="tokens/s (all streams)")
    right.set_ylabel("tokens/s, all streams")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="upper left", fontsize=8)
    left.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the front (virtual IP), e.g. https://10.20.0.100, or one node's API")
    ap.add_argument("--model", default="qwen3-cs")
    ap.add_argument("--key-file", default="", help="file holding the API key (else $OLLAMA_FLEET_API_KEY; none = no header)")
    ap.add_argument("--ca-file", default="", help="CA an https front's certificate must chain to")
    ap.add_argument("--prompts", default=os.path.join(HERE, "capacity_prompts.jsonl"))
    ap.add_argument("--levels", default="1,2,4,6,8,12,16", help="concurrency levels, ascending (at most 12, each <= 256)")
    ap.add_argument("--duration-s", type=float, default=20.0, help="time each level streams (<= 300)")
    ap.add_argument("--max-requests", type=int, default=200, help="requests per level at most (<= 2000)")
    ap.add_argument("--timeout-s", type=float, default=30.0, help="limit of one request")
    ap.add_argument("--num-predict", type=int, default=128, help="cap on generated tokens per answer (0 = the model's)")
    ap.add_argument("--think", default="false", choices=["", "true", "false"])
    ap.add_argument("--ttft-limit-s", type=float, default=1.5, help="the first-token limit (fleet_first_token_s)")
    ap.add_argument("--stop-after", type=int, default=2, help="failing levels in a row after which it stops climbing")
    ap.add_argument("--nodes", type=int, default=1, help="Ollama nodes behind the front (for the suggestion)")
    ap.add_argument("--num-parallel", type=int, default=None, help="their ollama_num_parallel now (for the suggestion)")
    ap.add_argument("--front-metrics", default="", help="HAProxy's Prometheus exporter, e.g. http://10.20.0.100:8405/metrics")
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache", "capacity"), help="directory for capacity.json and capacity.png")
    ap.add_argument("--label", default="", help="words added to the title and the JSON (e.g. the hardware)")
    args = ap.parse_args(argv)
    try:
        args.level_list = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        ap.error("--levels must be comma-separated numbers")
    if (not args.level_list or len(args.level_list) > MAX_LEVELS or sorted(set(args.level_list)) != args.level_list
            or args.level_list[0] < 1 or args.level_list[-1] > MAX_CONCURRENCY):
        ap.error("--levels: 1 to %d ascending distinct levels between 1 and %d" % (MAX_LEVELS, MAX_CONCURRENCY))
    if not 0 < args.duration_s <= MAX_DURATION_S or not 1 <= args.max_requests <= MAX_REQUESTS:
        ap.error("--duration-s must be in (0, %g] and --max-requests in [1, %d]" % (MAX_DURATION_S, MAX_REQUESTS))
    if args.timeout_s <= 0 or args.ttft_limit_s <= 0 or args.stop_after < 1 or args.nodes < 1:
        ap.error("--timeout-s and --ttft-limit-s must be > 0, --stop-after and --nodes >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    key = ""
    if args.key_file:
        with open(args.key_file, encoding="utf-8") as f:
            key = f.read().strip()
    else:
        key = os.environ.get("OLLAMA_FLEET_API_KEY", "").strip()
    headers = {"Authorization": "Bearer " + key} if key else {}
    prompts = read_prompts(args.prompts)
    warm = probe.probe_once(args.url, args.model, "", args.timeout_s, num_predict=args.num_predict, headers=headers,
                            ca_file=args.ca_file, messages=prompts[0], keep_answer=True, think=args.think)
    if warm["error"]:
        print("capacity ladder: the warm-up request failed: %s" % warm["error"], file=sys.stderr)
        return 2
    standin = (warm.get("answer") or "").startswith(STANDIN_MARK)
    origin = "answers from the ollama STAND-IN, a test double, not Ollama" if standin else "answers from %s" % args.url
    levels, failing = [], 0
    for concurrency in args.level_list:
        samples, wall, queue_max = run_level(args, prompts, concurrency, headers)
        stats = level_stats(concurrency, samples, wall, queue_max, args.ttft_limit_s)
        standin = standin or stats["standin"]
        levels.append(stats)
        print(table([stats], origin)[-1], flush=True)
        failing = 0 if stats["within_limit"] else failing + 1
        if failing >= args.stop_after:
            break
    passing = [lv["concurrency"] for lv in levels if lv["within_limit"]]
    answer = max(passing) if passing else 0
    advice = suggest(levels, answer, args.nodes, args.num_parallel, args.ttft_limit_s)
    settings = {"url": args.url, "model": args.model, "levels": args.level_list, "duration_s": args.duration_s,
                "max_requests": args.max_requests, "num_predict": args.num_predict, "ttft_limit_s": args.ttft_limit_s,
                "nodes": args.nodes, "num_parallel": args.num_parallel, "prompts": os.path.basename(args.prompts),
                "label": args.label}
    os.makedirs(args.out, exist_ok=True)
    title = "Capacity ladder %s%s%s" % (args.model, " - " + args.label if args.label else "",
                                         " [ollama STAND-IN, not Ollama]" if standin else "")
    png = picture(os.path.join(args.out, "capacity.png"), levels, answer, args.ttft_limit_s, title)
    report = {"standin": standin, "origin": origin, "settings": settings, "levels": levels, "answer": answer,
              "suggestions": advice, "picture": png}
    with open(os.path.join(args.out, "capacity.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print("\n".join(table(levels, origin)))
    print("Answer (%s): %d customers at once within %.1fs to the first token with 0 errors%s" % (
        "ollama STAND-IN" if standin else args.url, answer, args.ttft_limit_s,
        "" if args.num_parallel is None else " (ollama_num_parallel %d, %d nodes)" % (args.num_parallel, args.nodes)))
    for line in advice["text"]:
        print("  " + line)
    print("JSON: %s\nPicture: %s" % (os.path.join(args.out, "capacity.json"), png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
