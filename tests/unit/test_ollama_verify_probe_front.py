"""ollama_verify_probe through a front: extra headers (the API key) and https verified against a
given CA. A local TLS server stands in for the front: it streams NDJSON only to a request that
carries the right bearer key, and answers 401 otherwise."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "plugins", "modules"))

import ollama_verify_probe as probe  # noqa: E402

KEY = "k" * 40


class Front(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _authorized(self):
        if self.headers.get("Authorization") == "Bearer " + KEY:
            return True
        body = b'{"error":"unauthorized"}'
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def do_GET(self):
        if self._authorized():
            body = b'{"version":"0.33.0"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self._authorized():
            lines = [{"message": {"content": "Hi"}, "done": False}, {"done": True, "eval_count": 1, "eval_duration": 1000}]
            body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    secrets = tmp_path_factory.mktemp("front")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lab_secrets.py"), str(secrets), "--ip", "127.0.0.1"],
                   check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(secrets / "tls" / "front.crt"), str(secrets / "tls" / "front.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "https://127.0.0.1:%d" % server.server_address[1], str(secrets / "tls" / "ca.crt")
    server.shutdown()


def test_key_header_and_ca_make_the_probe_pass(front):
    url, ca = front
    sample = probe.probe_once(url, "m", "hello", 10, headers={"Authorization": "Bearer " + KEY}, ca_file=ca)
    assert sample["error"] is None, sample
    assert probe.server_version(url, 10, {"Authorization": "Bearer " + KEY}, ca) == "0.33.0"


def test_without_the_key_the_front_answers_401(front):
    url, ca = front
    sample = probe.probe_once(url, "m", "hello", 10, ca_file=ca)
    assert sample["error"].startswith("HTTP 401"), sample


def test_the_certificate_is_verified(front):
    url, _ = front
    sample = probe.probe_once(url, "m", "hello", 10, headers={"Authorization": "Bearer " + KEY})
    assert sample["error"] is not None and "CERTIFICATE_VERIFY_FAILED" in sample["error"], sample
