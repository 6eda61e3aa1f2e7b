"""The front of the `ha` scenario, from the controller (the scenario's client and admin network):
the official ollama and openai clients chat through the virtual IP over TLS with certificate
verification; the edge refuses calls without a valid bearer key (401) and every node-changing
endpoint (403); the log names the key's owner, never the key; the nodes' API is closed to
everybody but the load balancers; server states survive a reload. Nodes run the ollama STAND-IN
(a test double)."""

from __future__ import annotations

import pathlib
import socket
import ssl
import sys

import httpx
import ollama
import openai
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import AUTH, CA, KEY, LBS, MODEL, NODES, URL, VIP, client, holder, node, runtime, servers, sudo, wait_status  # noqa: E402

testinfra_hosts = ["ansible://lb_nodes"]

MESSAGES = [{"role": "user", "content": "My order has not arrived. What can I do?"}]


def test_one_load_balancer_holds_the_virtual_ip():
    holders = [name for name in LBS if node(name).run(f"ip -o -4 addr show | grep -qw '{VIP}/24'").rc == 0]
    assert len(holders) == 1, holders


def test_both_load_balancers_listen_on_the_virtual_ip(host):
    assert host.socket(f"tcp://{VIP}:443").is_listening


def test_every_node_is_up_in_haproxy(host):
    for name in NODES:
        wait_status(host.backend.get_hostname(), name, "UP", timeout=30)


def test_ollama_client_chats_through_the_front():
    api = ollama.Client(host=URL, headers=AUTH, verify=CA)
    reply = api.chat(model=MODEL, messages=MESSAGES, options={"num_predict": 32})
    assert reply.message.content
    chunks = [c.message.content for c in api.chat(model=MODEL, messages=MESSAGES, stream=True, options={"num_predict": 32})]
    assert "".join(chunks)
    assert any(m.model.startswith("qwen3") for m in api.list().models)


def test_openai_client_chats_through_the_front():
    api = openai.OpenAI(base_url=f"{URL}/v1", api_key=KEY, http_client=httpx.Client(verify=CA))
    reply = api.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=32)
    assert reply.choices[0].message.content
    stream = api.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=32, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert [m.id for m in api.models.list()]


def test_the_certificate_is_verified():
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{URL}/api/version", headers=AUTH)  # the system trust store does not know the lab CA


@pytest.mark.parametrize("headers, query", [
    ({}, ""),
    ({"Authorization": "Bearer " + "x" * 40}, ""),
    ({"Authorization": "Basic " + KEY}, ""),
    ({}, "?key=" + KEY),
    ({}, "?api_key=" + KEY),
], ids=["no key", "wrong key", "not bearer", "key in query", "api_key in query"])
def test_calls_without_a_valid_key_get_401(headers, query):
    with client() as http:
        for method, path in (("GET", "/api/tags"), ("POST", "/api/chat")):
            response = http.request(method, path + query, headers=headers, json={"model": MODEL, "messages": MESSAGES})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/pull"), ("POST", "/api/push"), ("POST", "/api/create"), ("DELETE", "/api/delete"),
    ("POST", "/api/copy"), ("HEAD", "/api/blobs/sha256:" + "0" * 64), ("POST", "/api/blobs/sha256:" + "0" * 64),
    ("GET", "/api/chat"), ("GET", "/metrics"),
])
def test_node_changing_and_unknown_endpoints_get_403(method, path):
    with client() as http:
        response = http.request(method, path, headers=AUTH, json={"model": MODEL, "name": MODEL, "source": MODEL, "destination": "x"})
    assert response.status_code == 403, response.text


def test_nothing_reached_the_nodes_through_the_refused_endpoints():
    with client() as http:
        models = {m["name"] for m in http.get("/api/tags", headers=AUTH).json()["models"]}
    assert "qwen3:4b" in models and any(name.startswith(MODEL) for name in models), models
    assert "x:latest" not in models


def raw_status(request: bytes) -> int:
    """Status code of one raw HTTP/1.1 request over TLS (headers only: the front answers early)."""
    context = ssl.create_default_context(cafile=CA)
    with socket.create_connection((VIP, 443), timeout=10) as raw, context.wrap_socket(raw, server_hostname=VIP) as tls:
        tls.sendall(request)
        return int(tls.recv(4096).split(b" ", 2)[1])


def test_request_body_limit():
    head = f"POST /api/chat HTTP/1.1\r\nHost: {VIP}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
    assert raw_status((head + "Content-Length: 2000000\r\n\r\n").encode()) == 413
    assert raw_status((head + "Transfer-Encoding: chunked\r\n\r\n").encode()) == 411


def test_log_names_the_owner_never_the_key(host):
    with client() as http:
        assert http.get("/api/version?key=" + KEY, headers=AUTH).status_code == 200
    lb = holder()
    log = sudo(lb, "journalctl -u haproxy --no-pager -n 500 -o cat")
    assert "owner=lab" in log
    assert KEY not in log


def test_key_map_is_not_world_readable(host):
    mapfile = host.file("/etc/haproxy/api-keys.map")
    assert mapfile.mode == 0o640 and mapfile.user == "root" and mapfile.group == "haproxy"


def test_node_api_is_closed_to_the_controller():
    for address in NODES.values():
        with pytest.raises(OSError):
            socket.create_connection((address, 11434), timeout=3).close()


def test_node_api_is_open_to_the_load_balancers(host):
    for address in NODES.values():
        assert host.run(f"curl -sf --max-time 5 http://{address}:11434/api/version").rc == 0


def test_prometheus_exporter_on_the_host_address():
    for address in ("172.28.70.21", "172.28.70.22"):
        response = httpx.get(f"http://{address}:8405/metrics", timeout=10)
        assert response.status_code == 200 and "haproxy_backend_" in response.text


def test_drain_survives_a_reload(host):
    lb = host.backend.get_hostname()
    runtime(lb, "set server ollama_nodes/ha-node2 state drain")
    try:
        wait_status(lb, "ha-node2", "DRAIN", timeout=10)
        sudo(lb, "systemctl reload haproxy")
        wait_status(lb, "ha-node2", "DRAIN", timeout=10)
        assert sudo(lb, "systemctl is-active haproxy").strip() == "active"
    finally:
        runtime(lb, "set server ollama_nodes/ha-node2 state ready")
    wait_status(lb, "ha-node2", "UP", timeout=30)
