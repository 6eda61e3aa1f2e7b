"""A node without the pinned model digest gets no traffic, even though Ollama there still answers
and even still serves the customer-service variant: HAProxy's health check asks /api/tags for the
pinned digest. The pinned model is removed from ha-node2 for the test and restored afterwards
with playbooks/models.yml (from the lab's model bundle). Nodes run the ollama STAND-IN."""

from __future__ import annotations

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import AUTH, MODEL, NODES, ROOT, client, holder, servers, sudo, wait_status  # noqa: E402
from playbook import run_playbook  # noqa: E402

testinfra_hosts = ["ansible://ha-node2"]
# The pinned model the variant is built FROM (the production example's ollama_models_cs_from).
BASE = "qwen3:4b-instruct-2507-q4_K_M"

FIXTURES = {
    "OLLAMA_FLEET_RELEASE_DIR": str(ROOT / ".cache/releases"),
    "OLLAMA_FLEET_MODELS_BUNDLE": str(ROOT / ".cache/models-bundle"),
    "OLLAMA_FLEET_CACHE": str(ROOT / ".cache"),
}


def test_a_node_without_the_pinned_digest_gets_no_traffic():
    lb = holder()
    assert lb, "no load balancer holds the virtual IP"
    address = NODES["ha-node2"]
    sudo("ha-node2", f"curl -sf -X DELETE http://{address}:11434/api/delete -d '{{\"model\": \"{BASE}\"}}'")
    try:
        wait_status(lb, "ha-node2", "DOWN", timeout=30)
        # Ollama on ha-node2 still answers and still has the variant: only the pin is missing.
        assert '"qwen3-cs' in sudo("ha-node2", f"curl -sf http://{address}:11434/api/tags")
        before = {name: int(row["stot"]) for name, row in servers(lb).items()}
        with client() as http:
            for _ in range(10):
                response = http.post("/api/chat", headers=AUTH, json={
                    "model": MODEL, "stream": False, "options": {"num_predict": 8},
                    "messages": [{"role": "user", "content": "Hello"}]})
                assert response.status_code == 200, response.text
        after = {name: int(row["stot"]) for name, row in servers(lb).items()}
        assert after["ha-node2"] == before["ha-node2"], (before, after)
        assert after["ha-node1"] - before["ha-node1"] >= 10, (before, after)
    finally:
        rc, out = run_playbook("playbooks/models.yml", "--limit", "ha-node2", env={**FIXTURES, **{k: v for k, v in os.environ.items() if k.startswith("OLLAMA_FLEET_")}})
        assert rc == 0, out[-3000:]
    wait_status(lb, "ha-node2", "UP", timeout=60)
