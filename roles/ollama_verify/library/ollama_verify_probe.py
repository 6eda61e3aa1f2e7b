#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Measure an Ollama endpoint: N streamed /api/chat requests, time to first token and total time.

Runs where it is executed (on the node for its own API, or on the controller for an endpoint),
stdlib only (http.client), Python 3.6+. It never fails on slow answers: it reports, and the
calling play decides against its thresholds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ollama_verify_probe
short_description: Time streamed /api/chat requests against an Ollama API
description:
  - Sends O(requests) sequential streamed C(/api/chat) requests and measures, per request, the
    time from opening the connection to the first streamed chunk that carries generated text
    (C(message.content) or C(message.thinking)), not to the response headers, and the total
    time to the final C(done) chunk.
  - Reports nearest-rank p50/p95 of both, the server-reported generation rate and the errors.
    A request that takes longer than O(timeout_s) is aborted and counted as an error.
options:
  url:
    description: Base URL of the Ollama API, e.g. C(http://10.0.0.11:11434).
    type: str
    required: true
  model:
    description: Model to chat with.
    type: str
    required: true
  requests:
    description: Number of sequential requests.
    type: int
    default: 10
  timeout_s:
    description: Limit for one request, connection to last chunk, in seconds.
    type: float
    default: 30
  prompt:
    description: The user message.
    type: str
    default: Hello, can you help me with my order?
  keep_alive:
    description: C(keep_alive) sent with each request (omitted when empty); a number is seconds.
    type: str
    default: ""
  num_predict:
    description: Cap on generated tokens per request (0 = model default).
    type: int
    default: 0
  target:
    description: Name of the target in the result (a host or endpoint name); defaults to O(url).
    type: str
    default: ""
  kind:
    description: What the target is, copied to the result.
    type: str
    choices: [node, endpoint]
    default: node
  ttft_p95_limit_s:
    description: The p95 time to first token above which the result lists a problem.
    type: float
    default: 1.5
  headers:
    description: Extra request headers, e.g. C(Authorization) for an endpoint behind the front (never logged).
    type: dict
    default: {}
  ca_file:
    description: CA certificate file that an C(https) URL's certificate must chain to (empty = the system trust store).
    type: str
    default: ""
author: ollama-fleet
"""

RETURN = r"""
probe:
  description: Per-request samples and their statistics (seconds; None where nothing succeeded).
  returned: always
  type: dict
"""

import json
import math
import ssl
import time

try:
    from http.client import HTTPConnection, HTTPSConnection
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported by the fleet
    raise

from ansible.module_utils.basic import AnsibleModule


def percentile(values, pct):
    """Nearest-rank percentile (no interpolation): the smallest sample >= pct % of samples.

    With few samples this is conservative: p95 of 10 samples is the slowest one.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = int(math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def chunk_text(chunk):
    """Generated text carried by one /api/chat (or /api/generate) stream object."""
    message = chunk.get("message") or {}
    return (message.get("content") or "") + (message.get("thinking") or "") + (chunk.get("response") or "")


class ProbeError(Exception):
    pass


def _connection(url, timeout, ca_file=""):
    """A connection to url; https verifies the certificate (against ca_file when given)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError("unsupported URL %s" % url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file or None)
        return HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context), (parts.path or "").rstrip("/")
    return HTTPConnection(parts.hostname, parts.port, timeout=timeout), (parts.path or "").rstrip("/")


def read_stream(lines, started, deadline, clock=time.perf_counter):
    """Consume NDJSON lines (an iterator of bytes); returns (first_token_at, done_chunk).

    Raises ProbeError for a server-side error object, a stream that ends without done,
    or a deadline overrun.
    """
    first = None
    for raw in lines:
        now = clock()
        if now > deadline:
            raise ProbeError("timed out after %.1fs" % (deadline - started))
        raw = raw.strip()
        if not raw:
            continue
        try:
            chunk = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise ProbeError("invalid JSON in stream: %r" % raw[:80])
        if chunk.get("error"):
            raise ProbeError("server error: %s" % chunk["error"])
        if first is None and chunk_text(chunk):
            first = now
        if chunk.get("done"):
            return first, chunk
    raise ProbeError("stream ended before done")


def _lines(response, sock_holder, deadline, clock):
    """Yield response lines, shrinking the socket timeout to what is left before the deadline."""
    while True:
        left = deadline - clock()
        if left <= 0:
            raise ProbeError("timed out")
        if sock_holder.sock is not None:
            sock_holder.sock.settimeout(left)
        line = response.readline()
        if not line:
            return
        yield line


def probe_once(url, model, prompt, timeout_s, keep_alive="", num_predict=0, clock=time.perf_counter, headers=None, ca_file=""):
    """One streamed chat; returns a sample dict (error set on failure)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
    if keep_alive != "":
        body["keep_alive"] = int(keep_alive) if keep_alive.lstrip("-").isdigit() else keep_alive
    if num_predict:
        body["options"] = {"num_predict": num_predict}
    payload = json.dumps(body).encode("utf-8")
    started = clock()
    deadline = started + timeout_s
    sample = {"ttft_s": None, "total_s": None, "eval_count": None, "tokens_per_s": None, "error": None}
    conn = None
    try:
        conn, prefix = _connection(url, timeout_s, ca_file)
        conn.request("POST", prefix + "/api/chat", payload, dict(headers or {}, **{"Content-Type": "application/json"}))
        response = conn.getresponse()
        if response.status != 200:
            text = response.read(2000).decode("utf-8", "replace").strip()
            raise ProbeError("HTTP %d: %s" % (response.status, text))
        first, done = read_stream(_lines(response, conn, deadline, clock), started, deadline, clock)
        ended = clock()
        if ended > deadline:
            raise ProbeError("timed out after %.1fs" % timeout_s)
        if first is None:
            raise ProbeError("no generated text in the stream")
        sample["ttft_s"] = first - started
        sample["total_s"] = ended - started
        count, duration = done.get("eval_count"), done.get("eval_duration")
        sample["eval_count"] = count
        if count and duration:
            sample["tokens_per_s"] = count / (duration / 1e9)
    except ProbeError as exc:
        sample["error"] = str(exc)
    except (OSError, ValueError) as exc:  # socket.timeout is an OSError
        text = str(exc) or exc.__class__.__name__
        if "timed out" in text:
            text = "timed out after %.1fs" % timeout_s
        sample["error"] = "%s: %s" % (exc.__class__.__name__, text)
    finally:
        if conn is not None:
            conn.close()
    if sample["error"] is not None:
        sample["total_s"] = clock() - started
    return sample


def summarize(samples):
    """Statistics over samples; only successful requests enter the timings."""
    ok = [s for s in samples if s["error"] is None]
    ttft = [s["ttft_s"] for s in ok]
    total = [s["total_s"] for s in ok]
    rates = [s["tokens_per_s"] for s in ok if s["tokens_per_s"]]
    errors = [s["error"] for s in samples if s["error"] is not None]
    distinct = []
    for text in errors:
        if text not in distinct:
            distinct.append(text)
    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(errors),
        "error_messages": distinct[:5],
        "ttft_p50_s": percentile(ttft, 50),
        "ttft_p95_s": percentile(ttft, 95),
        "total_p50_s": percentile(total, 50),
        "total_p95_s": percentile(total, 95),
        "total_max_s": max([s["total_s"] for s in samples]) if samples else None,
        "tokens_per_s": percentile(rates, 50),
        "samples": samples,
    }


def judge(stats, ttft_p95_limit_s, timeout_s):
    """Human-readable problems of a summary (empty when within the limits)."""
    problems = []
    if stats["errors"]:
        problems.append("%d of %d requests failed: %s" % (stats["errors"], stats["requests"], "; ".join(stats["error_messages"])))
    if stats["ttft_p95_s"] is not None and stats["ttft_p95_s"] > ttft_p95_limit_s:
        problems.append("p95 time to first token %.3fs exceeds %.3fs" % (stats["ttft_p95_s"], ttft_p95_limit_s))
    if stats["total_max_s"] is not None and stats["total_max_s"] > timeout_s:
        problems.append("slowest request took %.3fs, over the %.1fs limit" % (stats["total_max_s"], timeout_s))
    return problems


def server_version(url, timeout_s, headers=None, ca_file=""):
    """The version /api/version reports, or an error text in angle brackets."""
    conn = None
    try:
        conn, prefix = _connection(url, timeout_s, ca_file)
        conn.request("GET", prefix + "/api/version", headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read(4096)
        if response.status != 200:
            return "<HTTP %d>" % response.status
        return str(json.loads(body.decode("utf-8")).get("version", "?"))
    except (OSError, ValueError, ProbeError) as exc:
        return "<%s>" % (str(exc) or exc.__class__.__name__)
    finally:
        if conn is not None:
            conn.close()


def run(params):
    headers, ca_file = params.get("headers") or {}, params.get("ca_file") or ""
    version = server_version(params["url"], params["timeout_s"], headers, ca_file)
    samples = []
    for _ in range(params["requests"]):
        samples.append(
            probe_once(params["url"], params["model"], params["prompt"], params["timeout_s"],
                       params["keep_alive"], params["num_predict"], headers=headers, ca_file=ca_file)
        )
    result = summarize(samples)
    result.update(url=params["url"], model=params["model"], timeout_s=params["timeout_s"],
                  ttft_p95_limit_s=params["ttft_p95_limit_s"], version=version,
                  target=params["target"] or params["url"], kind=params["kind"])
    result["problems"] = judge(result, params["ttft_p95_limit_s"], params["timeout_s"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            requests=dict(type="int", default=10),
            timeout_s=dict(type="float", default=30.0),
            prompt=dict(type="str", default="Hello, can you help me with my order?"),
            keep_alive=dict(type="str", default=""),
            num_predict=dict(type="int", default=0),
            ttft_p95_limit_s=dict(type="float", default=1.5),
            target=dict(type="str", default=""),
            kind=dict(type="str", default="node", choices=["node", "endpoint"]),
            headers=dict(type="dict", default={}, no_log=True),
            ca_file=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    if module.params["requests"] < 1 or module.params["timeout_s"] <= 0 or module.params["ttft_p95_limit_s"] <= 0:
        module.fail_json(msg="requests must be >= 1, timeout_s and ttft_p95_limit_s > 0")
    module.exit_json(changed=False, probe=run(module.params))


if __name__ == "__main__":
    main()
