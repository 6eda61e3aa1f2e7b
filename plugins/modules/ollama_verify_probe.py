#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Measure an Ollama endpoint: N streamed /api/chat requests, time to the first visible token and total time.

Runs where it is executed (on the node for its own API, or on the controller for an endpoint),
stdlib only (http.client), Python 3.6+. It never fails on slow answers: it reports, and the
calling play decides against its thresholds.

The one definition of the measurement: the ollama_metrics role ships this file to each node,
where its timer's script imports it (Ansible is imported only by main(), so the file imports
without Ansible).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ollama_verify_probe
short_description: Time streamed /api/chat requests against an Ollama API
description:
  - Sends O(requests) sequential streamed C(/api/chat) requests and measures, per request, the
    time from opening the connection to the first streamed chunk with a non-empty
    C(message.content) (C(response) on C(/api/generate)), which is the first token a customer sees.
    Thinking (C(message.thinking)) is never visible to a customer; the time to the first
    thinking chunk and the number of thinking chunks are reported beside it.
  - A request whose answer has no visible content (only thinking, or nothing) is an error.
  - A thinking model asked for C(think=false) may reason anyway; Ollama then passes the reasoning
    through as content ended by C(</think>). That text counts as thinking, the first visible token
    is the first content after it, and the result lists it as a problem.
  - Reports nearest-rank p50/p95 of the times, the server-reported generation rate, the model
    that answered (the C(model) of the stream), whether it thought, and the errors. A request
    that takes longer than O(timeout_s) is aborted and counted as an error.
  - For O(kind=node), reads C(/api/ps) after the requests and reports where the model runs
    (C(size_vram) against C(size)); with O(require_gpu) a model not wholly in VRAM is a problem.
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
    description: The p95 time to the first visible token above which the result lists a problem.
    type: float
    default: 1.5
  think:
    description:
      - C(think) sent with each request; C(false) is what a customer-service client sends to ask
        for no reasoning (a thinking model may ignore it, which the result then shows).
      - Empty omits the field.
    type: str
    choices: ["", "true", "false"]
    default: "false"
  require_gpu:
    description:
      - With O(kind=node), fail unless C(/api/ps) shows the model wholly in VRAM (C(size_vram == size)).
    type: bool
    default: false
  headers:
    description: Extra request headers, e.g. C(Authorization) for an endpoint behind the front (never logged).
    type: dict
    default: {}
  ca_file:
    description: CA certificate file that an C(https) URL's certificate must chain to (empty = the system trust store).
    type: str
    default: ""
  golden_cases:
    description:
      - The site's golden questions, the C(cases) of the golden file as the C(ollama_golden_cases) filter reads
        them (items with C(name), C(question) or C(conversation), C(all_of), C(any_of), C(none_of); the format
        is in C(plugins/module_utils/golden.py) and the ollama_verify role's README).
      - After the timed requests each case is asked once, streamed, through O(model) with the model's own
        parameters (only O(think) and O(keep_alive) are sent), and its visible answer is scored.
      - The result's C(golden) holds the resolution rate (cases passed / cases) and every case's verdict;
        a rate below O(golden_threshold), or below O(golden_baseline_rate) by more than O(golden_margin),
        is a problem naming the failed cases. Empty asks nothing.
    type: list
    elements: dict
    default: []
  golden_threshold:
    description: The lowest resolution rate that passes (0 to 1).
    type: float
    default: 0.85
  golden_baseline_rate:
    description: The old model's resolution rate on the same cases (a rolling upgrade's canary); none = no comparison.
    type: float
  golden_margin:
    description: How far below O(golden_baseline_rate) the rate may be (0 to 1).
    type: float
    default: 0.05
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Time three streamed chats against the node's own API
  ollama_fleet.fleet.ollama_verify_probe:
    url: http://127.0.0.1:11434
    model: qwen3-cs
    requests: 3
    timeout_s: 30
    kind: node
  register: probe

- name: Through the front, with an API key and the site CA
  ollama_fleet.fleet.ollama_verify_probe:
    url: https://10.20.0.100
    model: qwen3-cs
    kind: endpoint
    headers:
      Authorization: "Bearer {{ key }}"
    ca_file: /etc/ssl/certs/site-ca.pem
  no_log: true
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
    from ansible_collections.ollama_fleet.fleet.plugins.module_utils import golden
except ImportError:  # loaded by path beside golden.py (roles/ollama_metrics on a node, scripts/capacity_ladder.py)
    import golden  # pylint: disable=import-error

try:
    from http.client import HTTPConnection, HTTPSConnection
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported by the fleet
    raise


def percentile(values, pct):
    """Nearest-rank percentile (no interpolation): the smallest sample >= pct % of samples.

    With few samples this is conservative: p95 of 10 samples is the slowest one.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = int(math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def chunk_content(chunk):
    """Visible answer text of one /api/chat (message.content) or /api/generate (response) object."""
    message = chunk.get("message") or {}
    return (message.get("content") or "") + (chunk.get("response") or "")


def chunk_thinking(chunk):
    """Thinking text of one stream object (message.thinking on chat, thinking on generate)."""
    message = chunk.get("message") or {}
    return (message.get("thinking") or "") + (chunk.get("thinking") or "")


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
    """Consume NDJSON lines (an iterator of bytes); returns a dict:

    first_content_at (clock of the first chunk with visible content, or None),
    first_thinking_at (clock of the first thinking chunk, or None), thinking_chunks (how many
    chunks carried thinking: one token each as Ollama streams), content_chars, model (the
    model the stream names) and done (the final chunk).

    Raises ProbeError for a server-side error object, a stream that ends without done,
    or a deadline overrun.
    """
    seen = {"first_content_at": None, "first_thinking_at": None, "thinking_chunks": 0,
            "content_chars": 0, "model": None, "done": None, "leaked_thinking": False,
            "content": "", "content_chunks": 0, "last_content_at": None}
    content_chunks = []  # (clock, text) of every chunk with content
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
        if seen["model"] is None and chunk.get("model"):
            seen["model"] = chunk["model"]
        if chunk_thinking(chunk):
            seen["thinking_chunks"] += 1
            if seen["first_thinking_at"] is None:
                seen["first_thinking_at"] = now
        content = chunk_content(chunk)
        if content:
            content_chunks.append((now, content))
        if chunk.get("done"):
            seen["done"] = chunk
            _visible_content(seen, content_chunks)
            return seen
    raise ProbeError("stream ended before done")


THINK_END = "</think>"


def _visible_content(seen, content_chunks):
    """Fill first_content_at/content_chars from the content chunks.

    A thinking model asked for think=false may still reason, and Ollama then passes its reasoning
    through as content, ended by </think> (no thinking parser runs). Everything up to the last
    </think> is reasoning the customer sees but did not ask for: it counts as thinking (and sets
    leaked_thinking); the first visible answer token is the first content after it.
    """
    text = "".join(t for _, t in content_chunks)
    cut = text.rfind(THINK_END)
    if content_chunks:
        seen["last_content_at"] = content_chunks[-1][0]
    if cut < 0:
        if content_chunks:
            seen["first_content_at"] = content_chunks[0][0]
            seen["content_chars"] = len(text)
            seen["content"] = text
            seen["content_chunks"] = len(content_chunks)
        return
    cut += len(THINK_END)
    seen["leaked_thinking"] = True
    offset = 0
    for at, piece in content_chunks:
        end = offset + len(piece)
        if seen["first_content_at"] is None:
            if end <= cut or not piece[max(cut - offset, 0):].strip():
                seen["thinking_chunks"] += 1
                if seen["first_thinking_at"] is None:
                    seen["first_thinking_at"] = at
            else:
                seen["first_content_at"] = at
        if seen["first_content_at"] is not None:
            seen["content_chunks"] += 1
        offset = end
    seen["content"] = text[cut:].strip()
    seen["content_chars"] = len(seen["content"])
    if not seen["content_chars"]:
        seen["first_content_at"] = None


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


def probe_once(url, model, prompt, timeout_s, keep_alive="", num_predict=0, clock=time.perf_counter, think="false",
               headers=None, ca_file="", messages=None, keep_answer=False):
    """One streamed chat (messages, or one user turn of prompt); returns a sample dict (error set on
    failure). itl_s is the mean time between visible content chunks after the first (inter-token
    latency); with keep_answer the visible answer text is kept as answer."""
    body = {"model": model, "messages": messages or [{"role": "user", "content": prompt}], "stream": True}
    if think != "":
        body["think"] = think == "true"
    if keep_alive != "":
        body["keep_alive"] = int(keep_alive) if keep_alive.lstrip("-").isdigit() else keep_alive
    if num_predict:
        body["options"] = {"num_predict": num_predict}
    payload = json.dumps(body).encode("utf-8")
    started = clock()
    deadline = started + timeout_s
    sample = {"ttft_s": None, "total_s": None, "eval_count": None, "tokens_per_s": None, "error": None,
              "first_thinking_s": None, "thinking_tokens": 0, "answered_by": None, "leaked_thinking": False,
              "itl_s": None}
    if keep_answer:
        sample["answer"] = None
    conn = None
    try:
        conn, prefix = _connection(url, timeout_s, ca_file)
        conn.request("POST", prefix + "/api/chat", payload, dict(headers or {}, **{"Content-Type": "application/json"}))
        response = conn.getresponse()
        if response.status != 200:
            text = response.read(2000).decode("utf-8", "replace").strip()
            raise ProbeError("HTTP %d: %s" % (response.status, text))
        seen = read_stream(_lines(response, conn, deadline, clock), started, deadline, clock)
        ended = clock()
        sample["answered_by"] = seen["model"]
        sample["thinking_tokens"] = seen["thinking_chunks"]
        sample["leaked_thinking"] = seen["leaked_thinking"]
        if seen["first_thinking_at"] is not None:
            sample["first_thinking_s"] = seen["first_thinking_at"] - started
        if ended > deadline:
            raise ProbeError("timed out after %.1fs" % timeout_s)
        if seen["first_content_at"] is None:
            if seen["thinking_chunks"]:
                raise ProbeError("empty answer: %d thinking tokens and no message.content" % seen["thinking_chunks"])
            raise ProbeError("empty answer: no message.content in the stream")
        sample["ttft_s"] = seen["first_content_at"] - started
        sample["total_s"] = ended - started
        if seen["content_chunks"] > 1:
            sample["itl_s"] = (seen["last_content_at"] - seen["first_content_at"]) / (seen["content_chunks"] - 1)
        if keep_answer:
            sample["answer"] = seen["content"]
        done = seen["done"]
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
        "first_thinking_p50_s": percentile([s["first_thinking_s"] for s in samples if s["first_thinking_s"] is not None], 50),
        "thinking_tokens_p50": percentile([s["thinking_tokens"] for s in samples if s["answered_by"] is not None], 50),
        "thought": any(s["thinking_tokens"] for s in samples),
        "leaked_thinking": any(s.get("leaked_thinking") for s in samples),
        "answered_by": sorted(set(s["answered_by"] for s in samples if s["answered_by"])),
        "samples": samples,
    }


def processor(size, size_vram):
    """Where a loaded model runs, worded as `ollama ps` words it."""
    if not size_vram:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or not size:
        return "Unknown"
    cpu = int(round((size - size_vram) * 100.0 / size))
    return "%d%%/%d%% CPU/GPU" % (cpu, 100 - cpu)


def full_name(name):
    """A model name as /api/ps lists it: with the implicit :latest tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def api_json(url, path, timeout_s, headers=None, ca_file="", limit=1 << 20):
    """The JSON body of GET url+path; raises ProbeError (a status other than 200), OSError or ValueError."""
    conn = None
    try:
        conn, prefix = _connection(url, timeout_s, ca_file)
        conn.request("GET", prefix + path, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read(limit)
        if response.status != 200:
            raise ProbeError("HTTP %d" % response.status)
        return json.loads(body.decode("utf-8"))
    finally:
        if conn is not None:
            conn.close()


def placement(url, model, timeout_s):
    """Where /api/ps says the model runs: dict(loaded, size, size_vram, processor, cpu_share) or error."""
    out = {"loaded": False, "size": None, "size_vram": None, "processor": "-", "cpu_share": None, "error": None}
    try:
        models = api_json(url, "/api/ps", timeout_s).get("models") or []
    except (OSError, ValueError, ProbeError) as exc:
        out["error"] = "/api/ps: %s" % (str(exc) or exc.__class__.__name__)
        return out
    wanted = full_name(model)
    for entry in models:
        if wanted in (entry.get("name"), entry.get("model")):
            size, vram = int(entry.get("size") or 0), int(entry.get("size_vram") or 0)
            out.update(loaded=True, size=size, size_vram=vram, processor=processor(size, vram),
                       cpu_share=(float(size - vram) / size if size and vram <= size else None))
            return out
    out["processor"] = "not loaded"
    return out


def judge(stats, ttft_p95_limit_s, timeout_s, require_gpu=False):
    """Human-readable problems of a summary (empty when within the limits)."""
    problems = []
    gpu = stats.get("gpu")
    if require_gpu and gpu is not None:
        if gpu["error"]:
            problems.append("cannot prove the model runs on the GPU: %s" % gpu["error"])
        elif not gpu["loaded"]:
            problems.append("cannot prove the model runs on the GPU: %s is not loaded (/api/ps)" % stats["model"])
        elif gpu["size_vram"] != gpu["size"]:
            problems.append("%s of the model on CPU (%s; size_vram %d of %d bytes): not wholly in GPU memory" % (
                "%d%%" % round(gpu["cpu_share"] * 100) if gpu["cpu_share"] is not None else "part",
                gpu["processor"], gpu["size_vram"], gpu["size"]))
    if stats["errors"]:
        problems.append("%d of %d requests failed: %s" % (stats["errors"], stats["requests"], "; ".join(stats["error_messages"])))
    if stats.get("leaked_thinking"):
        problems.append("the model's reasoning reached message.content (text up to </think>): it ignores think=false")
    if stats["ttft_p95_s"] is not None and stats["ttft_p95_s"] > ttft_p95_limit_s:
        problems.append("p95 time to first visible token %.3fs exceeds %.3fs" % (stats["ttft_p95_s"], ttft_p95_limit_s))
    if stats["total_max_s"] is not None and stats["total_max_s"] > timeout_s:
        problems.append("slowest request took %.3fs, over the %.1fs limit" % (stats["total_max_s"], timeout_s))
    if stats.get("golden"):
        problems += stats["golden"]["problems"]
    return problems


def run_golden(params, headers=None, ca_file=""):
    """Ask every golden case once through params["model"] and score the visible answers."""
    results = []
    for case in params["golden_cases"]:
        sample = probe_once(params["url"], params["model"], "", params["timeout_s"], params["keep_alive"],
                            params["num_predict"], think=params.get("think", "false"), headers=headers,
                            ca_file=ca_file, messages=case["messages"], keep_answer=True)
        results.append(golden.score(case, sample.get("answer"), sample["error"]))
    return golden.summary(results, params["golden_threshold"], params.get("golden_baseline_rate"),
                          params.get("golden_margin") or 0.0)


def server_version(url, timeout_s, headers=None, ca_file=""):
    """The version /api/version reports, or an error text in angle brackets."""
    try:
        return str(api_json(url, "/api/version", timeout_s, headers, ca_file, limit=4096).get("version", "?"))
    except (OSError, ValueError, ProbeError) as exc:
        return "<%s>" % (str(exc) or exc.__class__.__name__)


def run(params):
    headers, ca_file = params.get("headers") or {}, params.get("ca_file") or ""
    version = server_version(params["url"], params["timeout_s"], headers, ca_file)
    samples = []
    for _ in range(params["requests"]):
        samples.append(
            probe_once(params["url"], params["model"], params["prompt"], params["timeout_s"],
                       params["keep_alive"], params["num_predict"], think=params.get("think", "false"),
                       headers=headers, ca_file=ca_file)
        )
    result = summarize(samples)
    result.update(url=params["url"], model=params["model"], timeout_s=params["timeout_s"],
                  ttft_p95_limit_s=params["ttft_p95_limit_s"], version=version,
                  target=params["target"] or params["url"], kind=params["kind"],
                  require_gpu=bool(params.get("require_gpu")),
                  # Behind a load balancer /api/ps shows some node, not the one that answered.
                  gpu=placement(params["url"], params["model"], params["timeout_s"]) if params["kind"] == "node" else None)
    result["processor"] = result["gpu"]["processor"] if result["gpu"] else "-"
    result["golden"] = run_golden(params, headers, ca_file) if params.get("golden_cases") else None
    result["problems"] = judge(result, params["ttft_p95_limit_s"], params["timeout_s"], result["require_gpu"])
    return result


def main():
    # Imported here, not at the top: the node's metrics script imports this file without Ansible.
    from ansible.module_utils.basic import AnsibleModule

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
            think=dict(type="str", default="false", choices=["", "true", "false"]),
            require_gpu=dict(type="bool", default=False),
            headers=dict(type="dict", default={}, no_log=True),
            ca_file=dict(type="str", default=""),
            golden_cases=dict(type="list", elements="dict", default=[]),
            golden_threshold=dict(type="float", default=0.85),
            golden_baseline_rate=dict(type="float"),
            golden_margin=dict(type="float", default=0.05),
        ),
        supports_check_mode=True,
    )
    if module.params["requests"] < 1 or module.params["timeout_s"] <= 0 or module.params["ttft_p95_limit_s"] <= 0:
        module.fail_json(msg="requests must be >= 1, timeout_s and ttft_p95_limit_s > 0")
    for key in ("golden_threshold", "golden_baseline_rate", "golden_margin"):
        if module.params[key] is not None and not 0 <= module.params[key] <= 1:
            module.fail_json(msg="%s must be between 0 and 1, got %s" % (key, module.params[key]))
    try:
        module.params["golden_cases"] = golden.normalize({"cases": module.params["golden_cases"]}) if module.params["golden_cases"] else []
    except ValueError as exc:
        module.fail_json(msg="golden_cases: %s" % exc)
    module.exit_json(changed=False, probe=run(module.params))


if __name__ == "__main__":
    main()
