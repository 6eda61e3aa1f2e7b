"""ollama_verify_probe: statistics, stream parsing, and timings against the ollama STAND-IN.

The stand-in (tests/ollama_standin, a test double of Ollama, not Ollama) is built as a release
archive, unpacked and started on 127.0.0.1; its control file sets first-token latency, token
rate, thinking and faults. Timing assertions use generous bounds: they check what is measured (the
first chunk with visible content, not thinking and not the headers), not how fast this machine is.
"""

import json
import os
import socket
import subprocess
import sys
import tarfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STANDIN = os.path.join(ROOT, "tests", "ollama_standin")
sys.path.insert(0, os.path.join(ROOT, "plugins", "modules"))

import ollama_verify_probe as probe  # noqa: E402


# -- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, pct, expected",
    [
        ([], 50, None),
        ([3.0], 95, 3.0),
        ([5, 1, 4, 2, 3], 50, 3),
        ([5, 1, 4, 2, 3], 95, 5),
        (list(range(1, 21)), 95, 19),  # nearest rank: ceil(0.95 * 20) = 19th smallest
        (list(range(1, 11)), 95, 10),  # 10 samples: p95 is the slowest one
        (list(range(1, 101)), 50, 50),
    ],
)
def test_percentile_is_nearest_rank(values, pct, expected):
    assert probe.percentile(values, pct) == expected


def lines(*objs):
    return [json.dumps(o).encode() + b"\n" for o in objs]


def fake_clock(*ticks):
    it = iter(ticks)
    return lambda: next(it)


def test_first_token_is_the_first_chunk_with_text_not_an_empty_one():
    stream = lines(
        {"model": "qwen3-cs", "message": {"role": "assistant", "content": ""}, "done": False},
        {"message": {"role": "assistant", "content": "Hel"}, "done": False},
        {"message": {"role": "assistant", "content": "lo"}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2},
    )
    seen = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(1.0, 2.0, 3.0, 4.0))
    assert seen["first_content_at"] == 2.0 and seen["first_thinking_at"] is None and seen["thinking_chunks"] == 0
    assert seen["done"]["eval_count"] == 2 and seen["model"] == "qwen3-cs"


def thinking_first_chat(n_thinking, answer=("Sure", ", I can help.")):
    """A /api/chat stream as a thinking model sends it: thinking chunks, then content."""
    objs = [{"model": "qwen3:4b", "message": {"role": "assistant", "content": "", "thinking": "t%d " % i}, "done": False}
            for i in range(n_thinking)]
    objs += [{"model": "qwen3:4b", "message": {"role": "assistant", "content": text}, "done": False} for text in answer]
    objs.append({"model": "qwen3:4b", "message": {"role": "assistant", "content": ""}, "done": True,
                 "eval_count": n_thinking + len(answer)})
    return lines(*objs)


def test_thinking_is_not_the_first_token_a_customer_sees():
    stream = thinking_first_chat(3)  # chunks arrive at t = 1, 2, 3 (thinking), 4, 5 (content), 6 (done)
    seen = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(*range(1, 7)))
    assert seen["first_thinking_at"] == 1 and seen["first_content_at"] == 4
    assert seen["thinking_chunks"] == 3 and seen["content_chars"] == len("Sure, I can help.")


def test_reasoning_passed_through_as_content_is_not_the_first_visible_token():
    # think=false on a thinking model: Ollama runs no thinking parser, the reasoning arrives as
    # content ended by </think>, then the answer.
    stream = lines(*(
        [{"model": "qwen3:4b", "message": {"role": "assistant", "content": t}, "done": False}
         for t in ("Okay, ", "the user ", "asks.", "\n</think>", "\n\n", "Sure", "!")]
        + [{"model": "qwen3:4b", "message": {"role": "assistant", "content": ""}, "done": True}]))
    seen = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(*range(1, 9)))
    assert seen["leaked_thinking"] is True
    assert seen["first_thinking_at"] == 1 and seen["thinking_chunks"] == 5  # up to and incl. the blank chunk
    assert seen["first_content_at"] == 6 and seen["content_chars"] == len("Sure!")
    stats = {"errors": 0, "requests": 1, "error_messages": [], "ttft_p95_s": 0.1, "total_max_s": 1.0,
             "leaked_thinking": True}
    assert "reasoning reached message.content" in probe.judge(stats, 1.5, 30)[0]


def test_reasoning_as_content_without_an_answer_is_empty():
    stream = lines({"message": {"content": "hmm"}, "done": False}, {"message": {"content": "</think>"}, "done": False},
                   {"message": {"content": ""}, "done": True})
    seen = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(1, 2, 3))
    assert seen["first_content_at"] is None and seen["thinking_chunks"] == 2 and seen["leaked_thinking"]


def test_generate_stream_fields_thinking_and_response():
    stream = lines({"model": "m", "response": "", "thinking": "hm", "done": False},
                   {"model": "m", "response": "Hi", "done": False}, {"model": "m", "response": "", "done": True})
    seen = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(1.0, 2.5, 3.0))
    assert (seen["first_thinking_at"], seen["first_content_at"], seen["thinking_chunks"]) == (1.0, 2.5, 1)


class LineClock:
    """Time advances by one second with every line read: line n arrives at t = n."""

    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


class FakeResponse:
    def __init__(self, raw_lines, clock, status=200):
        self.status = status
        self._lines = list(raw_lines)
        self._clock = clock

    def readline(self):
        self._clock.now += 1
        return self._lines.pop(0) if self._lines else b""

    def read(self, _n=-1):
        return b""


class FakeConnection:
    """Stands in for http.client's connection: answers one request with canned lines."""

    def __init__(self, raw_lines, clock):
        self.sock = None
        self.sent = None
        self._response = FakeResponse(raw_lines, clock)

    def request(self, method, path, body=None, headers=None):
        self.sent = (method, path, json.loads(body))

    def getresponse(self):
        return self._response

    def close(self):
        pass


def probe_with(monkeypatch, raw_lines, think="false"):
    clock = LineClock()
    conn = FakeConnection(raw_lines, clock)
    monkeypatch.setattr(probe, "_connection", lambda url, timeout, *_: (conn, ""))
    sample = probe.probe_once("http://node:11434", "qwen3:4b", "hello", 100, clock=clock, think=think)
    return sample, conn.sent


def test_probe_once_reports_first_visible_token_and_thinking_beside_it(monkeypatch):
    # line n arrives at t = n: thinking at 1-3, content at 4-5, done at 6
    sample, sent = probe_with(monkeypatch, thinking_first_chat(3))
    assert sent[0:2] == ("POST", "/api/chat") and sent[2]["think"] is False and sent[2]["stream"] is True
    assert sample["error"] is None
    assert sample["ttft_s"] == 4 and sample["first_thinking_s"] == 1
    assert sample["thinking_tokens"] == 3 and sample["answered_by"] == "qwen3:4b" and sample["total_s"] == 6


def test_think_can_be_left_out_of_the_request(monkeypatch):
    _, sent = probe_with(monkeypatch, thinking_first_chat(0), think="")
    assert "think" not in sent[2]


def test_a_thinking_only_answer_fails(monkeypatch):
    sample, _ = probe_with(monkeypatch, thinking_first_chat(4, answer=()))
    assert sample["error"] == "empty answer: 4 thinking tokens and no message.content"
    assert sample["ttft_s"] is None and sample["first_thinking_s"] == 1 and sample["thinking_tokens"] == 4


def test_an_empty_answer_fails(monkeypatch):
    stream = lines({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True})
    sample, _ = probe_with(monkeypatch, stream)
    assert sample["error"] == "empty answer: no message.content in the stream"


def test_summary_says_who_answered_and_whether_it_thought():
    def sample(ttft, think_s, n):
        return {"ttft_s": ttft, "total_s": ttft + 1, "eval_count": 10, "tokens_per_s": 20.0, "error": None,
                "first_thinking_s": think_s, "thinking_tokens": n, "answered_by": "qwen3:4b"}
    stats = probe.summarize([sample(2.0, 0.1, 40), sample(2.2, 0.1, 44), sample(2.4, 0.2, 48)])
    assert stats["thought"] is True and stats["answered_by"] == ["qwen3:4b"]
    assert stats["first_thinking_p50_s"] == 0.1 and stats["thinking_tokens_p50"] == 44
    assert stats["ttft_p95_s"] == 2.4
    plain = probe.summarize([sample(0.3, None, 0)])
    assert plain["thought"] is False and plain["first_thinking_p50_s"] is None and plain["thinking_tokens_p50"] == 0


def test_error_object_in_the_stream_is_an_error():
    with pytest.raises(probe.ProbeError, match="server error: boom"):
        probe.read_stream(iter(lines({"error": "boom"})), 0.0, 100.0, clock=fake_clock(1.0))


def test_stream_without_done_is_an_error():
    with pytest.raises(probe.ProbeError, match="before done"):
        probe.read_stream(iter(lines({"message": {"content": "x"}, "done": False})), 0.0, 100.0, clock=fake_clock(1.0))


def test_summary_and_judgement():
    samples = [
        {"ttft_s": 0.1 * i, "total_s": 0.2 * i, "eval_count": 10, "tokens_per_s": 50.0, "error": None} for i in range(1, 10)
    ] + [{"ttft_s": None, "total_s": 31.0, "eval_count": None, "tokens_per_s": None, "error": "timed out after 30.0s"}]
    for s in samples:
        s.update(first_thinking_s=None, thinking_tokens=0, answered_by=None)
    stats = probe.summarize(samples)
    assert (stats["requests"], stats["ok"], stats["errors"]) == (10, 9, 1)
    assert stats["ttft_p95_s"] == pytest.approx(0.9)
    assert stats["ttft_p50_s"] == pytest.approx(0.5)
    assert stats["total_max_s"] == 31.0
    problems = probe.judge(stats, 0.5, 30.0)
    assert any("1 of 10 requests failed: timed out" in p for p in problems)
    assert any("p95 time to first visible token 0.900s exceeds 0.500s" in p for p in problems)
    assert any("slowest request took 31.000s" in p for p in problems)
    assert probe.judge(stats | {"errors": 0, "total_max_s": 1.0}, 1.0, 30.0) == []


# -- GPU proof -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size, vram, text", [
    (100, 0, "100% CPU"), (100, 100, "100% GPU"), (100, 25, "75%/25% CPU/GPU"), (100, 120, "Unknown"), (0, 5, "Unknown"),
])
def test_processor_is_worded_like_ollama_ps(size, vram, text):
    assert probe.processor(size, vram) == text


def gpu_stats(**gpu):
    base = {"loaded": True, "size": 1000, "size_vram": 1000, "processor": "100% GPU", "cpu_share": 0.0, "error": None}
    base.update(gpu)
    return {"errors": 0, "requests": 3, "error_messages": [], "ttft_p95_s": 0.2, "total_max_s": 1.0,
            "model": "qwen3-cs", "gpu": base}


def test_gpu_required_and_wholly_in_vram_passes():
    assert probe.judge(gpu_stats(), 1.5, 30, require_gpu=True) == []


def test_gpu_required_and_part_on_cpu_fails_naming_the_share():
    stats = gpu_stats(size_vram=600, processor="40%/60% CPU/GPU", cpu_share=0.4)
    (problem,) = probe.judge(stats, 1.5, 30, require_gpu=True)
    assert problem.startswith("40% of the model on CPU (40%/60% CPU/GPU; size_vram 600 of 1000 bytes)")


def test_gpu_required_on_a_cpu_host_fails():
    stats = gpu_stats(size_vram=0, processor="100% CPU", cpu_share=1.0)
    (problem,) = probe.judge(stats, 1.5, 30, require_gpu=True)
    assert problem.startswith("100% of the model on CPU (100% CPU;")


def test_gpu_required_but_not_loaded_or_unreadable_fails():
    assert "qwen3-cs is not loaded" in probe.judge(gpu_stats(loaded=False, processor="not loaded"), 1.5, 30, True)[0]
    assert "/api/ps: HTTP 500" in probe.judge(gpu_stats(error="/api/ps: HTTP 500"), 1.5, 30, True)[0]


def test_gpu_not_required_passes_on_cpu():
    assert probe.judge(gpu_stats(size_vram=0, processor="100% CPU", cpu_share=1.0), 1.5, 30, require_gpu=False) == []


# -- against the stand-in ----------------------------------------------------------------------

THINKING = "qwen3:4b"  # the stand-in's default build thinks before every answer, like the real tag
INSTRUCT = "qwen3:4b-instruct-2507-q4_K_M"  # built with --variant instruct: answers at once


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp):
        subprocess.run([sys.executable, os.path.join(STANDIN, "build_release.py"), "--version", "0.33.0", "--out", str(tmp / "rel")],
                       check=True, capture_output=True)
        with tarfile.open(str(tmp / "rel" / "ollama-linux-amd64.tgz")) as tar:
            tar.extractall(str(tmp / "inst"))
        for extra in (["--name", THINKING], ["--name", INSTRUCT, "--variant", "instruct"]):
            subprocess.run([sys.executable, os.path.join(STANDIN, "build_model.py"), *extra, "--out", str(tmp / "models")],
                           check=True, capture_output=True)
        self.control = str(tmp / "control.json")
        self.models_dir = str(tmp / "models")
        self.url = "http://127.0.0.1:%d" % free_port()
        env = dict(os.environ, OLLAMA_HOST=self.url[7:], OLLAMA_MODELS=str(tmp / "models"),
                   OLLAMA_STANDIN_CONTROL=self.control, HOME=str(tmp))
        self.log = open(str(tmp / "serve.log"), "wb")
        self.proc = subprocess.Popen([str(tmp / "inst" / "bin" / "ollama"), "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while probe.server_version(self.url, 0.5).startswith("<"):
            assert time.monotonic() < deadline and self.proc.poll() is None, "stand-in did not start"
            time.sleep(0.05)

    def knobs(self, **values):
        with open(self.control, "w") as f:
            json.dump(values, f)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("standin"))
    yield s
    s.stop()


@pytest.fixture
def standin(server):
    server.knobs()
    yield server
    server.knobs()


def test_reports_the_server_version(standin):
    assert probe.server_version(standin.url, 5) == "0.33.0"


def test_first_token_time_is_measured_at_the_first_text_chunk_not_the_headers(standin):
    # The stand-in sends its headers at once and sleeps first_token_ms before the first token.
    standin.knobs(first_token_ms=400)
    sample = probe.probe_once(standin.url, INSTRUCT, "hello", 10)
    assert sample["error"] is None
    assert 0.4 <= sample["ttft_s"] < 1.4
    assert sample["total_s"] >= sample["ttft_s"]


def test_total_time_and_rate_follow_the_token_rate(standin):
    standin.knobs(tokens_per_second=40)
    sample = probe.probe_once(standin.url, INSTRUCT, "hello", 10)
    assert sample["error"] is None
    n = sample["eval_count"]
    assert n >= 10
    assert sample["total_s"] - sample["ttft_s"] >= (n - 1) / 40.0 * 0.9
    assert 20 <= sample["tokens_per_s"] <= 45


def test_a_request_over_the_timeout_is_aborted_and_counted_as_an_error(standin):
    standin.knobs(first_token_ms=3000)
    started = time.monotonic()
    sample = probe.probe_once(standin.url, INSTRUCT, "hello", 0.5)
    assert time.monotonic() - started < 2.0
    assert "timed out" in sample["error"]


def test_http_errors_are_reported(standin):
    standin.knobs(fault="http500")
    assert probe.probe_once(standin.url, INSTRUCT, "hello", 5)["error"].startswith("HTTP 500")
    standin.knobs()
    assert "HTTP 404" in probe.probe_once(standin.url, "no-such-model:1b", "hello", 5)["error"]


def test_connection_refused_is_an_error_not_a_crash():
    sample = probe.probe_once("http://127.0.0.1:%d" % free_port(), INSTRUCT, "hello", 2)
    assert "refused" in sample["error"].lower()


def test_run_judges_against_the_limit(standin):
    standin.knobs(first_token_ms=300)
    params = dict(url=standin.url, model=INSTRUCT, prompt="hi", timeout_s=10, keep_alive="-1", num_predict=5,
                  requests=3, ttft_p95_limit_s=0.2, target="node1", kind="node")
    result = probe.run(params)
    assert (result["ok"], result["errors"], result["target"], result["version"]) == (3, 0, "node1", "0.33.0")
    assert result["problems"] and "exceeds 0.200s" in result["problems"][0]
    assert all(s["eval_count"] <= 5 for s in result["samples"])
    standin.knobs()
    assert probe.run(dict(params, ttft_p95_limit_s=1.5))["problems"] == []


def test_stand_in_thinking_model_first_visible_token_waits_for_the_thinking(standin):
    # 32 thinking tokens (the stand-in's default) at 40 tokens/s: the answer starts after ~0.8 s,
    # while the first (thinking) token comes at once.
    standin.knobs(tokens_per_second=40)
    sample = probe.probe_once(standin.url, THINKING, "hello", 10)
    assert sample["error"] is None and sample["answered_by"] == THINKING
    assert sample["thinking_tokens"] == 32
    assert sample["first_thinking_s"] < 0.3
    assert sample["ttft_s"] >= 32 / 40.0 * 0.9
    fast = probe.probe_once(standin.url, INSTRUCT, "hello", 10)
    assert fast["thinking_tokens"] == 0 and fast["first_thinking_s"] is None and fast["ttft_s"] < 0.3


def test_stand_in_gate_fails_the_thinking_model_and_passes_the_instruct_one(standin):
    standin.knobs(tokens_per_second=20)
    params = dict(url=standin.url, prompt="hi", timeout_s=10, keep_alive="-1", num_predict=128,
                  requests=2, ttft_p95_limit_s=1.5, target="node1", kind="node")
    thinking = probe.run(dict(params, model=THINKING))
    assert thinking["thought"] and thinking["thinking_tokens_p50"] == 32 and thinking["leaked_thinking"]
    assert thinking["ttft_p95_s"] >= 1.5 and thinking["first_thinking_p50_s"] < 0.3
    assert any("p95 time to first visible token" in p for p in thinking["problems"])
    assert any("reasoning reached message.content" in p for p in thinking["problems"])
    instruct = probe.run(dict(params, model=INSTRUCT))
    assert not instruct["thought"] and instruct["problems"] == [] and instruct["answered_by"] == [INSTRUCT]


def test_stand_in_thinking_model_asked_not_to_think_still_fails(standin):
    # think=false: the stand-in, like Ollama, passes the reasoning through as content up to </think>.
    standin.knobs(tokens_per_second=40)
    leaked = probe.probe_once(standin.url, THINKING, "hello", 10, think="false")
    omitted = probe.probe_once(standin.url, THINKING, "hello", 10, think="")
    for sample in (leaked, omitted):
        assert sample["error"] is None and sample["thinking_tokens"] == 32
        assert sample["ttft_s"] >= 32 / 40.0 * 0.9 and sample["first_thinking_s"] < 0.3
    assert leaked["leaked_thinking"] is True and omitted["leaked_thinking"] is False


def test_stand_in_num_predict_spent_on_thinking_is_an_empty_answer(standin):
    sample = probe.probe_once(standin.url, THINKING, "hello", 10, num_predict=10)
    assert sample["error"] == "empty answer: 10 thinking tokens and no message.content"


def test_stand_in_gpu_proof_follows_size_vram(standin):
    params = dict(url=standin.url, model=INSTRUCT, prompt="hi", timeout_s=10, keep_alive="-1", num_predict=5,
                  requests=1, ttft_p95_limit_s=1.5, target="node1", kind="node")
    cpu = probe.run(dict(params, require_gpu=True))  # the stand-in reports 100% CPU by default
    assert cpu["processor"] == "100% CPU" and cpu["gpu"]["size_vram"] == 0
    assert cpu["problems"] and cpu["problems"][0].startswith("100% of the model on CPU (100% CPU;")
    assert probe.run(dict(params, require_gpu=False))["problems"] == []
    standin.knobs(vram_fraction=1)
    gpu = probe.run(dict(params, require_gpu=True))
    assert gpu["processor"] == "100% GPU" and gpu["problems"] == []
    standin.knobs(vram_fraction=0.9)
    part = probe.run(dict(params, require_gpu=True))
    assert part["problems"][0].startswith("10% of the model on CPU (10%/90% CPU/GPU;")
    endpoint = probe.run(dict(params, kind="endpoint", require_gpu=True))
    assert endpoint["gpu"] is None and endpoint["processor"] == "-" and endpoint["problems"] == []
