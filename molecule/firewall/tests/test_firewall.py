"""The firewall, proven from real clients: fw-allowed is listed, fw-denied never was, fw-former
was listed at converge and removed by side_effect.yml. Runs on both nodes (ufw, firewalld)."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest
import testinfra

testinfra_hosts = ["ansible://fw_nodes"]

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
from playbook import recap, run_playbook  # noqa: E402  (shared helper, found through the line above)

ADDRESS = {"fw-ufw": "172.28.30.11", "fw-firewalld": "172.28.30.12"}
ADMIN = "172.28.30.1"  # the controller, through the bridge gateway
MARKER = "ollama-fleet"

# The managed set after side_effect.yml: SSH from admins, the API from fw-allowed (listed as a
# client AND as a load balancer: one rule), the 8443 extra rule, VRRP (given as "112").
EXPECTED_UFW = {
    "allow in tcp 22 172.28.30.1",
    "allow in tcp 11434 172.28.30.21",
    "allow in tcp 8443 172.28.30.21",
    "allow in vrrp any 172.28.30.0/24",
}
EXPECTED_RICH = {
    'rule family="ipv4" source address="172.28.30.1/32" port port="22" protocol="tcp" accept',
    'rule family="ipv4" source address="172.28.30.21/32" port port="11434" protocol="tcp" accept',
    'rule family="ipv4" source address="172.28.30.21/32" port port="8443" protocol="tcp" accept',
    'rule family="ipv4" source address="172.28.30.0/24" protocol value="vrrp" accept',
}


def client(name):
    return testinfra.get_host(f"docker://{name}")


def node_name(host):
    return host.backend.get_hostname()


def curl(from_host, url):
    # --max-time 3: a dropped SYN must fail fast, not hang the test.
    return from_host.run("curl -sS --max-time 3 %s", url)


def ufw_managed(host):
    """Managed ufw rules as 'action direction proto port source' keys, one per tuple line."""
    keys = []
    text = host.file("/etc/ufw/user.rules").content_string + host.file("/etc/ufw/user6.rules").content_string
    for line in text.splitlines():
        if line.startswith("### tuple ###") and " comment=" in line:
            fields, comment = line.split(" comment=")
            if bytes.fromhex(comment.strip()).decode().startswith(MARKER):
                action, proto, dport, _dst, _sport, src, direction = fields.split()[3:10]
                keys.append(f"{action} {direction} {proto} {dport} {src}")
    return keys


def rich_rules(host, permanent):
    flag = "--permanent " if permanent else ""
    out = host.check_output(f"firewall-cmd {flag}--zone=ollama-fleet --list-rich-rules")
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture()
def address(host):
    return ADDRESS[node_name(host)]


def test_api_answers_locally(host):
    # Guards every "denied" test below: the listener is up, so a failure there is the firewall.
    body = json.loads(host.check_output("curl -sS --max-time 3 http://127.0.0.1:11434/api/version"))
    assert body["version"] == "0.33.0"


def test_allowed_client_reaches_api(address):
    out = curl(client("fw-allowed"), f"http://{address}:11434/api/version")
    assert out.rc == 0, out.stderr
    assert json.loads(out.stdout)["version"] == "0.33.0"


@pytest.mark.parametrize("name", ["fw-denied", "fw-former"])
def test_unlisted_client_cannot_reach_api(address, name):
    out = curl(client(name), f"http://{address}:11434/api/version")
    assert out.rc != 0, f"{name} reached the API: {out.stdout}"
    # 28: timed out (dropped, firewall_default_incoming=deny); 7: refused (reject).
    assert out.rc in (7, 28), out.stderr


def test_unlisted_port_closed_even_for_allowed_client(host, address):
    assert host.run("curl -sS --max-time 3 http://127.0.0.1:8080/").rc == 0
    assert curl(client("fw-allowed"), f"http://{address}:8080/").rc in (7, 28)


def test_extra_rule_opens_its_port_to_its_sources_only(address):
    assert curl(client("fw-allowed"), f"http://{address}:8443/").rc == 0
    assert curl(client("fw-denied"), f"http://{address}:8443/").rc in (7, 28)


def test_ssh_port_open_to_admin_network_only(address):
    # sshd, which Ansible uses. This process is the admin.
    with socket.create_connection((address, 22), timeout=3):
        pass
    assert curl(client("fw-allowed"), f"http://{address}:22/").rc in (7, 28)


def test_outbound_connections_stay_allowed(host):
    server = socket.socket()
    server.bind((ADMIN, 0))
    server.listen(1)
    server.settimeout(10)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0].close()))
    thread.start()
    port = server.getsockname()[1]
    out = host.run("python3 -c 'import socket; socket.create_connection((\"%s\", %d), 3)'" % (ADMIN, port))
    thread.join(timeout=10)
    server.close()
    assert out.rc == 0, out.stderr
    assert accepted, "the node's outbound connection never arrived"


def test_default_incoming_policy_is_deny(host):
    if node_name(host) == "fw-ufw":
        status = host.check_output("ufw status verbose")
        assert "Status: active" in status
        assert "Default: deny (incoming), allow (outgoing)" in status
        assert host.service("ufw").is_enabled
    else:
        assert host.check_output("firewall-cmd --get-default-zone") == "ollama-fleet"
        assert host.check_output("firewall-cmd --permanent --zone=ollama-fleet --get-target") == "DROP"
        assert host.service("firewalld").is_running
        assert host.service("firewalld").is_enabled


def test_managed_rules_are_exactly_the_desired_set(host):
    # No stale rule (fw-former's is gone), no duplicate, nothing missing.
    if node_name(host) == "fw-ufw":
        keys = ufw_managed(host)
        assert sorted(keys) == sorted(EXPECTED_UFW)
    else:
        for permanent in (False, True):
            rules = rich_rules(host, permanent)
            assert sorted(rules) == sorted(EXPECTED_RICH), f"permanent={permanent}"


# -- the guard that keeps Ansible's own SSH session, over real SSH -----------------------------------


def rules_of(name):
    node = testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
    if name == "fw-ufw":
        return node.file("/etc/ufw/user.rules").content_string + node.check_output("ufw status verbose")
    return node.check_output("firewall-cmd --zone=ollama-fleet --list-all")


def fresh_ssh(address):
    """A new SSH login (no shared connection), exactly as Ansible makes one."""
    keys = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ssh"
    return subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ConnectTimeout=5",
         "-o", f"UserKnownHostsFile={keys / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
         "-i", str(keys / "id_ed25519"), f"deploy@{address}", "sudo", "-n", "true"],
        capture_output=True, text=True, timeout=30,
    )


def test_guard_refuses_admin_sources_that_would_cut_the_ssh_session():
    """The controller reaches the nodes from 172.28.30.1; an admin list without it must fail the run
    before any rule changes, naming the variable, and SSH must still answer afterwards."""
    before = {name: rules_of(name) for name in ADDRESS}
    rc, out = run_playbook("playbooks/firewall.yml", "-e", json.dumps({"firewall_admin_sources": ["10.99.0.0/24"]}))
    assert rc != 0, out[-3000:]
    assert "firewall_admin_sources" in out and "cut that session off" in out, out[-3000:]
    assert {h: c["failed"] for h, c in recap(out).items() if h in ADDRESS} == {h: 1 for h in ADDRESS}
    assert all(c["changed"] == 0 for h, c in recap(out).items() if h in ADDRESS), recap(out)
    assert {name: rules_of(name) for name in ADDRESS} == before
    for address in ADDRESS.values():
        login = fresh_ssh(address)
        assert login.returncode == 0, login.stderr
