"""The front's per-key usage export (roles/haproxy/files/haproxy_key_metrics.py): HAProxy's
`show table per_key` answer (as HAProxy 2.6 prints it) becomes node exporter textfile metrics per
owner, and an unreadable socket is reported, not hidden."""

from __future__ import annotations

import importlib.util
import pathlib
import socket
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("haproxy_key_metrics", ROOT / "roles/haproxy/files/haproxy_key_metrics.py")
metrics = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(metrics)

TABLE = """# table: per_key, type: string, size:10240, used:2
0x564c50928438: key=crm use=0 exp=86397474 conn_cur=1 http_req_cnt=7 http_req_rate(60000)=7 bytes_in_cnt=1094 bytes_out_cnt=1337 gpc0=0 gpc1=0 gpc2=0 gpc3=0 gpc4=3 gpc5=0
0x564c5092c578: key=platform use=0 exp=86397482 conn_cur=0 http_req_cnt=20 http_req_rate(60000)=20 bytes_in_cnt=5708 bytes_out_cnt=3830 gpc0=10 gpc1=1 gpc2=2 gpc3=0 gpc4=0 gpc5=0

"""


def test_each_owner_gets_its_counters_and_refusals_by_reason():
    text = metrics.render(metrics.parse(TABLE), up=True)
    assert "ollama_fleet_key_table_up 1" in text
    assert 'ollama_fleet_key_requests_total{owner="platform"} 20' in text
    assert 'ollama_fleet_key_received_bytes_total{owner="crm"} 1094' in text
    assert 'ollama_fleet_key_sent_bytes_total{owner="platform"} 3830' in text
    assert 'ollama_fleet_key_in_flight{owner="crm"} 1' in text
    assert 'ollama_fleet_key_refusals_total{owner="platform",reason="field"} 10' in text
    assert 'ollama_fleet_key_refusals_total{owner="platform",reason="in_flight"} 2' in text
    assert 'ollama_fleet_key_refusals_total{owner="crm",reason="body"} 3' in text
    assert text.count("# TYPE ollama_fleet_key_refusals_total counter") == 1


def test_the_file_is_written_from_the_socket_and_a_dead_socket_says_so(tmp_path):
    path = str(tmp_path / "admin.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def answer():
        conn, _ = server.accept()
        assert conn.recv(100) == b"show table per_key\n"
        conn.sendall(TABLE.encode())
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    out = tmp_path / "haproxy_keys.prom"
    assert metrics.main(["--socket", path, "--out", str(out)]) == 0
    thread.join()
    assert 'ollama_fleet_key_requests_total{owner="crm"} 7' in out.read_text()
    server.close()
    assert metrics.main(["--socket", str(tmp_path / "gone.sock"), "--out", str(out)]) == 1
    assert "ollama_fleet_key_table_up 0" in out.read_text() and "owner=" not in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
