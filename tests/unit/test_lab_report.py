"""scripts/lab_report.py (the end of `scripts/lab.sh up`) prints the Prometheus URL where the lab
has a monitoring host, read from the inventory, and says whether that Prometheus is ready."""

from __future__ import annotations

import http.server
import json
import pathlib
import subprocess
import sys
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import lab_report  # noqa: E402  (scripts/lab_report.py)


def inventory(path: str) -> tuple[dict, dict]:
    out = subprocess.run([str(ROOT / ".venv/bin/ansible-inventory"), "-i", path, "--list"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    inv = json.loads(out)
    return inv, {g: set(v.get("hosts", [])) for g, v in inv.items() if g != "_meta"}


def test_the_lab_has_prometheus_on_lab_lb1_and_production_none_by_default():
    assert lab_report.prometheus_urls(*inventory("inventories/lab")) == [("lab-lb1", "http://172.28.10.21:9090")]
    assert lab_report.prometheus_urls(*inventory("inventories/production")) == []


class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/-/ready" else 404)
        self.end_headers()
        self.wfile.write(b"Prometheus Server is Ready.\n")

    def log_message(self, *args):
        pass


def test_prints_the_url_and_checks_readiness(capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    inv = {"_meta": {"hostvars": {"mon": {"ansible_host": "127.0.0.1", "prometheus_port": port}}}}
    try:
        assert lab_report.prometheus(inv, {"monitoring_nodes": {"mon"}}) is True
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert f"Prometheus (on mon, alert rules of the fleet): http://127.0.0.1:{port}  -> ready" in out
    # Nothing listens there any more: reported, and the report fails.
    assert lab_report.prometheus(inv, {"monitoring_nodes": {"mon"}}) is False
    assert "NOT READY" in capsys.readouterr().out
    # No monitoring host: nothing printed, nothing to fail.
    assert lab_report.prometheus(inv, {}) is True and capsys.readouterr().out == ""
