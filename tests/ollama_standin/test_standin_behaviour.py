"""Server behaviours: Host checks, queue limits, SIGTERM, knobs and faults, startup/logging."""

import json
import signal
import threading
import time

import httpx
import pytest

from standin import server

MODEL = "qwen3:4b"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("host,allowed", [
    ("evil.example.com", False), ("evil.example.com:11434", False), ("8.8.8.8", False),
    ("localhost:11434", True), ("127.0.0.1:1", True), ("[::1]:11434", True), ("box.local", True),
    ("svc.internal:80", True), ("10.1.2.3", True), ("", True),
])
def test_host_header_rules(http, host, allowed):
    r = http.get("/api/version", headers={"Host": host})
    assert r.status_code == (200 if allowed else 403)
    if not allowed:
        assert r.content == b""


def test_non_loopback_bind_accepts_any_host():
    assert server.host_allowed(False, "evil.example.com")
    assert not server.host_allowed(True, "evil.example.com")
    assert not server.host_allowed(True, "[::1]")  # Go's SplitHostPort needs a port after brackets


def test_startup_log_lines(standin):
    log = standin.log()
    assert 'msg="server config" env="map[' in log and "OLLAMA_MODELS:" + standin.models in log
    assert 'msg="Listening on %s (version 0.33.0)"' % standin.host in log
    httpx.get(standin.url + "/api/tags")
    time.sleep(0.1)
    assert '| 200 |' in standin.log() and 'GET     "/api/tags"' in standin.log()


def test_max_queue_503(make_standin):
    s = make_standin({"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_QUEUE": "1"})
    s.set_control(first_token_ms=1200)
    results = []

    def call():
        results.append(httpx.post(s.url + "/api/chat", json=dict(CHAT, stream=False), timeout=20))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.15)
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 503]
    busy = next(r for r in results if r.status_code == 503)
    assert busy.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}


def _stream_then_signal(s, knobs):
    s.set_control(**knobs)
    lines, errors = [], []

    def consume():
        try:
            with httpx.stream("POST", s.url + "/api/chat", json=CHAT, timeout=20) as r:
                for line in r.iter_lines():
                    if line:
                        lines.append(json.loads(line))
        except httpx.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 10
    while not lines and time.monotonic() < deadline:
        time.sleep(0.02)
    s.proc.send_signal(signal.SIGTERM)
    t.join(20)
    return lines, errors, s.proc.wait(10)


def test_sigterm_drain_finishes_in_flight_stream(standin):
    lines, errors, rc = _stream_then_signal(standin, {"tokens_per_second": 20, "sigterm": "drain"})
    assert rc == 0 and not errors
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"


def test_sigterm_default_closes_like_real_ollama(standin):
    """Real Ollama calls http.Server.Close() on SIGTERM: in-flight streams are cut."""
    lines, errors, rc = _stream_then_signal(standin, {"tokens_per_second": 20})
    assert rc == 0
    assert errors or not lines[-1]["done"]


def _ttft(url: str) -> float:
    start = time.monotonic()
    with httpx.stream("POST", url + "/api/chat", json=CHAT, timeout=20) as r:
        for line in r.iter_lines():
            if line:
                return time.monotonic() - start
    raise AssertionError("no tokens")


def test_knobs_change_ttft_and_load_time_at_run_time(standin):
    fast = _ttft(standin.url)
    standin.set_control(first_token_ms=600)
    slow = _ttft(standin.url)
    assert slow > fast + 0.3
    standin.set_control(load_ms=600)
    httpx.post(standin.url + "/api/generate", json={"model": MODEL, "keep_alive": 0})
    cold = httpx.post(standin.url + "/api/generate", json={"model": MODEL, "prompt": "x", "stream": False}).json()
    warm = httpx.post(standin.url + "/api/generate", json={"model": MODEL, "prompt": "x", "stream": False}).json()
    assert cold["load_duration"] > 0.4e9 > warm["load_duration"]


def test_env_knobs_are_defaults(make_standin):
    s = make_standin({"OLLAMA_STANDIN_FIRST_TOKEN_MS": "500"})
    assert _ttft(s.url) > 0.4
    s.set_control(first_token_ms=0)
    assert _ttft(s.url) < 0.4


def test_fault_http500_and_recovery(standin):
    standin.set_control(fault="http500")
    r = httpx.post(standin.url + "/api/chat", json=CHAT)
    assert r.status_code == 500 and "[ollama stand-in] injected http500 fault" in r.json()["error"]
    assert httpx.get(standin.url + "/api/tags").status_code == 200  # fault_paths default: inference only
    standin.set_control()
    assert httpx.post(standin.url + "/api/chat", json=dict(CHAT, stream=False)).status_code == 200


def test_fault_hang(standin):
    standin.set_control(fault="hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(standin.url + "/api/generate", json={"model": MODEL, "prompt": "x"}, timeout=0.5)


def test_fault_crash_mid_stream(standin):
    standin.set_control(fault="crash")
    got = []
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("POST", standin.url + "/api/chat", json=CHAT, timeout=10) as r:
            for line in r.iter_lines():
                got.append(line)
    assert standin.proc.wait(5) == 2
    assert len([g for g in got if g]) == 1
    assert "panic: [ollama stand-in] injected crash fault" in standin.log()


def test_answer_depends_on_the_weights(standin):
    """Like a real model, the same name and prompt answers differently once the name points at
    other weights (another pinned digest): the rolling-upgrade tests tell A's answers from B's."""
    from standin_helpers import build_model

    def answer():
        r = httpx.post(standin.url + "/api/chat", json={**CHAT, "stream": False}, timeout=30)
        assert r.status_code == 200
        return r.json()["message"]["content"]

    first = answer()
    assert answer() == first  # deterministic for the same weights
    build_model(standin.models, MODEL, "--seed", "1")  # the same name at other weights
    second = answer()
    assert second != first
    assert second.startswith("[ollama stand-in] model=%s" % MODEL)


@pytest.mark.parametrize("option,value", [
    ("num_ctx", 8192), ("num_batch", 1024), ("num_gpu", 0), ("main_gpu", 1), ("use_mmap", False), ("num_thread", 3),
])
def test_any_runner_option_reloads_the_model_as_real_ollama_does(standin, option, value):
    # Real Ollama's scheduler (needsReload) compares the loaded runner's whole api.Runner options
    # with the request's: any other value of one of them reloads the model for everyone.
    standin.set_control(load_ms=400)
    ask = {"model": MODEL, "prompt": "x", "stream": False}
    httpx.post(standin.url + "/api/generate", json=ask, timeout=20)
    warm = httpx.post(standin.url + "/api/generate", json=dict(ask, options={"temperature": 0.9, "num_predict": 3}), timeout=20)
    assert warm.json()["load_duration"] < 0.2e9  # per-request options reuse the runner
    reload = httpx.post(standin.url + "/api/generate", json=dict(ask, options={option: value}), timeout=20)
    assert reload.json()["load_duration"] > 0.3e9, f"{option}={value} did not reload"
    ps = httpx.get(standin.url + "/api/ps").json()["models"]
    assert len(ps) == 1 and ps[0]["context_length"] == (value if option == "num_ctx" else 4096)
