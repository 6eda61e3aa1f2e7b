"""The edge of the `ha` scenario (issue #22), through the virtual IP over TLS with the lab's keys:
no client can change the model every client shares, a key reaches only its models and stays
within its limits, a slow body holds no slot, and with no node left the front answers a fast JSON
503 that tells the platform to fall back. Each harm is shown possible by a control sent straight to
a node from a load balancer (port 11434 is open to them only). Nodes run the ollama STAND-IN (a
test double of Ollama, not Ollama), which loads, reloads and unloads as Ollama does."""

from __future__ import annotations

import json
import pathlib
import shlex
import socket
import ssl
import sys
import threading
import time

import httpx
import ollama
import openai
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import AUTH, CA, LBS, MODEL, NODES, PLATFORM_AUTH, PLATFORM_KEY, URL, VIP, client, holder, slowed, sudo, wait_status  # noqa: E402

testinfra_hosts = [f"ansible://{sorted(NODES)[0]}"]

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
CONTEXT = 4096  # the variant's context (fleet_context_length), the only num_ctx the edge lets through


def direct(name: str, path: str, body: dict | None = None) -> dict:
    """A node's own API, called from a load balancer, past the edge."""
    data = "" if body is None else f"-X POST -d {shlex.quote(json.dumps(body))}"
    return json.loads(sudo(LBS[0], f"curl -sf --max-time 60 {data} http://{NODES[name]}:11434{path}"))


def variant_rows() -> dict[str, dict | None]:
    """Each node's /api/ps row of the variant (None when it is not loaded)."""
    return {name: next((m for m in direct(name, "/api/ps")["models"] if m["name"].split(":")[0] == MODEL), None)
            for name in NODES}


def warm_all() -> None:
    for name in NODES:
        direct(name, "/api/chat", {"model": MODEL, "messages": MESSAGES, "stream": False, "options": {"num_predict": 4}})


HARMFUL = [
    ("keep_alive", "/api/chat", {"keep_alive": 0}),
    ("keep_alive", "/api/chat", {"KEEP_ALIVE": "0s"}),          # Go matches field names in any case
    ("keep_alive", "/api/generate", {"prompt": "hi", "keep_alive": 0}),
    ("num_ctx", "/api/chat", {"options": {"num_ctx": 65536}}),
    ("num_ctx", "/api/chat", {"options": {"num_ctx": 2048}}),  # a smaller context reloads it too
    ("num_gpu", "/api/chat", {"options": {"num_gpu": 0}}),
    ("main_gpu", "/api/chat", {"options": {"main_gpu": 1}}),
    ("use_mmap", "/api/chat", {"options": {"use_mmap": False}}),
    ("raw", "/api/generate", {"prompt": "hi", "raw": True}),
    ("messages", "/api/chat", {"messages": []}),                # Ollama's unload/load call
    ("prompt", "/api/generate", {}),                             # no prompt: a load call
]


def body_for(path: str, extra: dict) -> dict:
    base = {"model": MODEL, "stream": False}
    if path == "/api/chat":
        base["messages"] = MESSAGES
    base.update(extra)
    return base


def test_fields_that_change_the_shared_model_are_refused_and_the_model_stays():
    warm_all()
    before = variant_rows()
    assert all(before.values()), before
    assert {row["context_length"] for row in before.values()} == {CONTEXT}
    with client() as http:
        for field, path, extra in HARMFUL:
            response = http.post(path, json=body_for(path, extra), headers=AUTH)
            assert response.status_code == 400, (field, extra, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/json")
            assert field in response.json()["error"], (field, response.text)
        # A name that decodes to keep_alive, and a second "model" field: both refused unread.
        escaped = b'{"model": "qwen3-cs", "messages": [{"role": "user", "content": "hi"}], "keep\\u005falive": 0}'
        assert http.post("/api/chat", content=escaped, headers={**AUTH, "Content-Type": "application/json"}).status_code == 400
        twice = b'{"model": "qwen3-cs", "messages": [{"role": "user", "content": "hi"}], "model": "qwen3:4b"}'
        assert http.post("/api/chat", content=twice, headers={**PLATFORM_AUTH, "Content-Type": "application/json"}).status_code == 400
    after = variant_rows()  # nothing refused reached a node: not even expires_at moved
    for name in NODES:
        assert after[name] is not None, f"{name} unloaded the variant"
        assert after[name]["context_length"] == CONTEXT, after[name]
        assert after[name]["expires_at"] == before[name]["expires_at"], (before[name], after[name])
    with client() as http:  # what is fine passes: the served context, raw false
        for path, extra in (("/api/chat", {"options": {"num_ctx": CONTEXT, "num_predict": 8}}),
                            ("/api/generate", {"prompt": "hi", "raw": False, "options": {"num_predict": 8}})):
            ok = http.post(path, json=body_for(path, extra), headers=AUTH)
            assert ok.status_code == 200, ok.text


def test_control_the_same_requests_straight_to_a_node_unload_and_reload_it():
    """Proves the test above could see the harm: sent past the edge, keep_alive 0 unloads the
    variant and num_ctx 65536 reloads it at another context."""
    first, second = sorted(NODES)
    warm_all()
    direct(first, "/api/chat", {"model": MODEL, "messages": [], "keep_alive": 0})
    direct(second, "/api/chat", body_for("/api/chat", {"options": {"num_ctx": 65536, "num_predict": 4}}))
    rows = variant_rows()
    print(f"\nCONTROL past the edge: {first} variant after keep_alive 0: {rows[first]}; "
          f"{second} context after num_ctx 65536: {rows[second] and rows[second]['context_length']} [nodes: ollama STAND-IN]")
    assert rows[first] is None, "keep_alive 0 did not unload the variant: the test above proves nothing"
    assert rows[second] is not None and rows[second]["context_length"] != CONTEXT
    warm_all()  # back to the pinned context on both
    assert {row["context_length"] for row in variant_rows().values()} == {CONTEXT}


def test_a_key_reaches_only_its_models():
    platform = ollama.Client(host=URL, headers=PLATFORM_AUTH, verify=CA)
    assert platform.chat(model=MODEL, messages=MESSAGES, options={"num_predict": 8}).message.content
    assert platform.chat(model="library/qwen3-cs:latest", messages=MESSAGES, options={"num_predict": 8}).done  # a spelling of it
    for call in (lambda: platform.chat(model="qwen3:4b", messages=MESSAGES), lambda: platform.show("qwen3:4b"),
                 lambda: platform.list(), lambda: platform.ps()):
        with pytest.raises(ollama.ResponseError) as refused:
            call()
        assert refused.value.status_code == 403 and "this key" in refused.value.error, refused.value
    gpt = openai.OpenAI(base_url=f"{URL}/v1", api_key=PLATFORM_KEY, http_client=httpx.Client(verify=CA))
    with pytest.raises(openai.PermissionDeniedError):
        gpt.chat.completions.create(model="qwen3:4b", messages=MESSAGES, max_tokens=8)
    # The operator's key (models: ['*']) reaches the same model and the listing.
    operator = ollama.Client(host=URL, headers=AUTH, verify=CA)
    assert operator.show("qwen3:4b").modelfile
    assert {m.model for m in operator.list().models} >= {"qwen3:4b", "qwen3-cs:latest"}


def stream_first_token(auth: dict, num_predict: int, out: list, started: float) -> None:
    """One streamed chat; appends (status, seconds to the first visible token or the answer, Retry-After)."""
    body = {"model": MODEL, "messages": MESSAGES, "stream": True, "options": {"num_predict": num_predict}}
    with client() as http, http.stream("POST", "/api/chat", json=body, headers=auth) as response:
        first = None
        for line in response.iter_lines():
            if first is None and line.strip() and json.loads(line).get("message", {}).get("content"):
                first = time.monotonic() - started
        out.append((response.status_code, first if first is not None else time.monotonic() - started,
                    response.headers.get("retry-after")))


@pytest.fixture
def slow_nodes():
    with slowed(10):
        yield


def test_a_key_over_its_limit_gets_429_while_another_keys_first_token_stays_fast(slow_nodes):
    warm_all()
    platform: list = []
    started = time.monotonic()
    threads = [threading.Thread(target=stream_first_token, args=(PLATFORM_AUTH, 40, platform, time.monotonic())) for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    time.sleep(0.5)
    operator: list = []
    stream_first_token(AUTH, 8, operator, time.monotonic())
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(s for s, _, _ in platform)
    print(f"\nper-key limit: platform (max_in_flight 2) x4 at once -> {statuses}; the operator's first token "
          f"meanwhile {operator[0][1]:.3f}s (limit 1.5 s); wall {time.monotonic() - started:.1f}s [nodes: ollama STAND-IN]")
    assert statuses.count(200) == 2 and statuses.count(429) == 2, platform
    assert all(retry for status, _, retry in platform if status == 429)
    assert operator[0][0] == 200 and operator[0][1] <= 1.5, operator


def slow_body(result: list) -> None:
    """A POST whose body comes one byte every 2 s; appends (status line, seconds until the cut)."""
    body = json.dumps({"model": MODEL, "messages": MESSAGES}).encode()
    head = (f"POST /api/chat HTTP/1.1\r\nHost: {VIP}\r\nAuthorization: Bearer {PLATFORM_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    context = ssl.create_default_context(cafile=CA)
    started = time.monotonic()
    with socket.create_connection((VIP, 443), timeout=40) as raw, context.wrap_socket(raw, server_hostname=VIP) as tls:
        tls.sendall(head)
        tls.settimeout(2)
        for byte in body[:15]:
            try:
                tls.sendall(bytes([byte]))
                answer = tls.recv(200)
                if answer:
                    result.append((answer.split(b"\r\n", 1)[0].decode(), time.monotonic() - started))
                    return
            except (TimeoutError, socket.timeout):
                continue
            except OSError as exc:
                result.append((f"closed: {exc}", time.monotonic() - started))
                return
    result.append(("never cut", time.monotonic() - started))


def test_slow_bodies_are_cut_and_hold_no_slot():
    warm_all()
    results: list = []
    threads = [threading.Thread(target=slow_body, args=(results,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    with client() as http:
        # The slow bodies count against their own key (2 at once) and against no other: the
        # platform's next request is refused, the operator's is served at once.
        own = http.post("/api/chat", json=body_for("/api/chat", {"options": {"num_predict": 8}}), headers=PLATFORM_AUTH)
        started = time.monotonic()
        ok = http.post("/api/chat", json=body_for("/api/chat", {"options": {"num_predict": 8}}), headers=AUTH)
        served = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    print(f"\nslow bodies: {[(line, round(t, 1)) for line, t in results]}; meanwhile the same key {own.status_code}, "
          f"another key {ok.status_code} in {served:.2f}s (the body bound: haproxy_timeout_body 10s) [nodes: ollama STAND-IN]")
    assert own.status_code == 429, own.text
    assert ok.status_code == 200 and served < 5, ok.text
    assert len(results) == 2
    for line, seconds in results:
        assert line.split(" ")[1] in ("400", "408"), line
        assert seconds <= 10 + 4, seconds


def test_get_with_a_body_is_refused():
    context = ssl.create_default_context(cafile=CA)
    request = (f"GET /api/version HTTP/1.1\r\nHost: {VIP}\r\nAuthorization: Bearer {PLATFORM_KEY}\r\n"
               "Content-Length: 5\r\n\r\nhello").encode()
    with socket.create_connection((VIP, 443), timeout=10) as raw, context.wrap_socket(raw, server_hostname=VIP) as tls:
        tls.sendall(request)
        assert tls.recv(4096).split(b" ", 2)[1] == b"400"


def test_no_node_left_gives_a_fast_json_503_then_service_again():
    lb = holder()
    assert lb
    try:
        for name in NODES:
            sudo(name, "systemctl stop ollama")
        for name in NODES:
            wait_status(lb, name, "DOWN", timeout=60)
        platform = ollama.Client(host=URL, headers=PLATFORM_AUTH, verify=CA)
        started = time.monotonic()
        with pytest.raises(ollama.ResponseError) as refused:
            platform.chat(model=MODEL, messages=MESSAGES)
        seconds = time.monotonic() - started
        with client() as http:
            raw = http.post("/api/chat", json=body_for("/api/chat", {}), headers=PLATFORM_AUTH)
        gpt = openai.OpenAI(base_url=f"{URL}/v1", api_key=PLATFORM_KEY, http_client=httpx.Client(verify=CA), max_retries=0)
        with pytest.raises(openai.InternalServerError) as openai_refused:
            gpt.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8)
        print(f"\nno node: ollama client ResponseError {refused.value.status_code} {refused.value.error!r} in {seconds:.3f}s; "
              f"Retry-After {raw.headers.get('retry-after')}; openai client {type(openai_refused.value).__name__} "
              f"{openai_refused.value.status_code} [nodes: ollama STAND-IN, stopped]")
        assert refused.value.status_code == 503 and "no node can answer" in refused.value.error
        assert seconds < 1.0
        assert raw.status_code == 503 and raw.headers["content-type"] == "application/json" and raw.headers["retry-after"].isdigit()
        assert openai_refused.value.status_code == 503
    finally:
        for name in NODES:
            sudo(name, "systemctl start ollama")
    for lb_name in LBS:
        for name in NODES:
            wait_status(lb_name, name, "UP", timeout=120)
    assert ollama.Client(host=URL, headers=PLATFORM_AUTH, verify=CA).chat(model=MODEL, messages=MESSAGES, options={"num_predict": 8}).done
