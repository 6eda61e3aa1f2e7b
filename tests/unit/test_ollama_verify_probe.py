"""ollama_verify_probe: statistics, stream parsing, and timings against the ollama STAND-IN.

The stand-in (tests/ollama_standin, a test double of Ollama, not Ollama) is built as a release
archive, unpacked and started on 127.0.0.1; its control file sets first-token latency, token
rate and faults. Timing assertions use generous bounds: they check what is measured (the first
chunk with text, not the headers), not how fast this machine is.
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
sys.path.insert(0, os.path.join(ROOT, "roles", "ollama_verify", "library"))

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
        {"message": {"role": "assistant", "content": ""}, "done": False},
        {"message": {"role": "assistant", "content": "Hel"}, "done": False},
        {"message": {"role": "assistant", "content": "lo"}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2},
    )
    first, done = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(1.0, 2.0, 3.0, 4.0))
    assert first == 2.0
    assert done["eval_count"] == 2


def test_thinking_counts_as_generated_text():
    stream = lines({"message": {"role": "assistant", "content": "", "thinking": "hm"}, "done": False}, {"done": True})
    first, _ = probe.read_stream(iter(stream), 0.0, 100.0, clock=fake_clock(1.5, 2.0))
    assert first == 1.5


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
    stats = probe.summarize(samples)
    assert (stats["requests"], stats["ok"], stats["errors"]) == (10, 9, 1)
    assert stats["ttft_p95_s"] == pytest.approx(0.9)
    assert stats["ttft_p50_s"] == pytest.approx(0.5)
    assert stats["total_max_s"] == 31.0
    problems = probe.judge(stats, 0.5, 30.0)
    assert any("1 of 10 requests failed: timed out" in p for p in problems)
    assert any("p95 time to first token 0.900s exceeds 0.500s" in p for p in problems)
    assert any("slowest request took 31.000s" in p for p in problems)
    assert probe.judge(stats | {"errors": 0, "total_max_s": 1.0}, 1.0, 30.0) == []


# -- against the stand-in ----------------------------------------------------------------------


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
        subprocess.run([sys.executable, os.path.join(STANDIN, "build_model.py"), "--name", "qwen3:4b", "--out", str(tmp / "models")],
                       check=True, capture_output=True)
        self.control = str(tmp / "control.json")
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
    sample = probe.probe_once(standin.url, "qwen3:4b", "hello", 10)
    assert sample["error"] is None
    assert 0.4 <= sample["ttft_s"] < 1.4
    assert sample["total_s"] >= sample["ttft_s"]


def test_total_time_and_rate_follow_the_token_rate(standin):
    standin.knobs(tokens_per_second=40)
    sample = probe.probe_once(standin.url, "qwen3:4b", "hello", 10)
    assert sample["error"] is None
    n = sample["eval_count"]
    assert n >= 10
    assert sample["total_s"] - sample["ttft_s"] >= (n - 1) / 40.0 * 0.9
    assert 20 <= sample["tokens_per_s"] <= 45


def test_a_request_over_the_timeout_is_aborted_and_counted_as_an_error(standin):
    standin.knobs(first_token_ms=3000)
    started = time.monotonic()
    sample = probe.probe_once(standin.url, "qwen3:4b", "hello", 0.5)
    assert time.monotonic() - started < 2.0
    assert "timed out" in sample["error"]


def test_http_errors_are_reported(standin):
    standin.knobs(fault="http500")
    assert probe.probe_once(standin.url, "qwen3:4b", "hello", 5)["error"].startswith("HTTP 500")
    standin.knobs()
    assert "HTTP 404" in probe.probe_once(standin.url, "no-such-model:1b", "hello", 5)["error"]


def test_connection_refused_is_an_error_not_a_crash():
    sample = probe.probe_once("http://127.0.0.1:%d" % free_port(), "qwen3:4b", "hello", 2)
    assert "refused" in sample["error"].lower()


def test_run_judges_against_the_limit(standin):
    standin.knobs(first_token_ms=300)
    params = dict(url=standin.url, model="qwen3:4b", prompt="hi", timeout_s=10, keep_alive="-1", num_predict=5,
                  requests=3, ttft_p95_limit_s=0.2, target="node1", kind="node")
    result = probe.run(params)
    assert (result["ok"], result["errors"], result["target"], result["version"]) == (3, 0, "node1", "0.33.0")
    assert result["problems"] and "exceeds 0.200s" in result["problems"][0]
    assert all(s["eval_count"] <= 5 for s in result["samples"])
    standin.knobs()
    assert probe.run(dict(params, ttft_p95_limit_s=1.5))["problems"] == []
