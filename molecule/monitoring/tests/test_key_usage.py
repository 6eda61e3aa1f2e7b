"""The front's per-key usage trail (issue #22), through Prometheus' HTTP API: requests and
refusals by reason per key owner, from the holder's per_key stick-table (roles/haproxy's
haproxy-key-metrics timer, node exporter's textfile collector). The nodes run the ollama STAND-IN
(a test double of Ollama, not Ollama)."""

from __future__ import annotations

import pathlib
import sys
import time

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from front import MODEL, PLATFORM_AUTH, client, holder  # noqa: E402
from test_alerts import MONITOR, PROMETHEUS, query, wait_for  # noqa: E402

testinfra_hosts = [f"ansible://{MONITOR}"]

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


def owner_series(name: str, lb: str, **labels: str) -> float:
    """The value of one per-owner series of the load balancer `lb` (0 when absent)."""
    selector = ",".join([f'instance="{lb}"', 'owner="platform"'] + [f'{k}="{v}"' for k, v in labels.items()])
    rows = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": f"{name}{{{selector}}}"}, timeout=10).json()["data"]["result"]
    return float(rows[0]["value"][1]) if rows else 0.0


def test_requests_and_refusals_per_key_reach_prometheus():
    lb = holder()
    assert lb
    before = owner_series("ollama_fleet_key_requests_total", lb), owner_series("ollama_fleet_key_refusals_total", lb, reason="field")
    with client() as http:
        ok = [http.post("/api/chat", headers=PLATFORM_AUTH, json={"model": MODEL, "messages": MESSAGES, "stream": False,
                                                                  "options": {"num_predict": 4}}).status_code for _ in range(3)]
        refused = http.post("/api/chat", headers=PLATFORM_AUTH,
                            json={"model": MODEL, "messages": MESSAGES, "keep_alive": 0}).status_code
    assert ok == [200] * 3 and refused == 400
    started = time.monotonic()
    took = wait_for(lambda: owner_series("ollama_fleet_key_requests_total", lb) >= before[0] + 4
                    and owner_series("ollama_fleet_key_refusals_total", lb, reason="field") >= before[1] + 1,
                    120, "the platform's requests and its refusal in Prometheus")
    print(f"\nper-key usage in Prometheus after {took:.1f}s: platform requests "
          f"{owner_series('ollama_fleet_key_requests_total', lb):.0f}, refusals (field) "
          f"{owner_series('ollama_fleet_key_refusals_total', lb, reason='field'):.0f}, bytes in "
          f"{owner_series('ollama_fleet_key_received_bytes_total', lb):.0f} [nodes: ollama STAND-IN]")
    assert query("ollama_fleet_key_table_up").get(lb) == 1.0
    assert time.monotonic() - started < 120
