"""A certificate whose key does not match is refused before it replaces the running one (issue 23):
playbooks/front.yml with a wrong haproxy_tls_key_file fails at the certificate, naming both
variables, and the load balancer keeps its PEM, so a reload and a restart of HAProxy still
succeed. Before, the mismatched PEM was installed, the config check failed after it, and the next
start of HAProxy failed. Run on the load balancer that does not hold the virtual IP. Nodes run the
ollama STAND-IN (a test double)."""

from __future__ import annotations

import pathlib
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from front import LBS, holder, sudo, wait_status  # noqa: E402
from playbook import run_playbook  # noqa: E402

testinfra_hosts = ["ansible://lb_nodes"]

PEM = "/etc/haproxy/tls/front.pem"


def test_a_key_that_does_not_match_is_refused_and_the_running_certificate_stays(tmp_path):
    lb = next(name for name in LBS if name != holder())
    before = sudo(lb, f"sha256sum {PEM}").split()[0]
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    rc, out = run_playbook("playbooks/front.yml", "-l", lb, "-e", f"haproxy_tls_key_file={wrong}")
    assert rc != 0, out[-2000:]
    assert "HAProxy cannot load haproxy_tls_certificate_file" in out and "haproxy_tls_key_file" in out, out[-2000:]
    assert "Nothing was replaced" in out
    assert sudo(lb, f"sha256sum {PEM}").split()[0] == before, "the mismatched certificate replaced the running one"
    # A site's next reload and restart (an operator's, a reboot's) load the kept certificate.
    sudo(lb, "systemctl reload haproxy")
    sudo(lb, "systemctl restart haproxy")
    assert sudo(lb, "systemctl is-active haproxy").strip() == "active"
    wait_status(lb, "ha-node1", "UP", timeout=60)
    wait_status(lb, "ha-node2", "UP", timeout=60)
