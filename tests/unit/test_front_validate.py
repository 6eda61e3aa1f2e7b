"""Bad input to the front's roles (haproxy, keepalived) fails their validate entry points (argument
spec + tasks/validate.yml) before any host changes, and the message names the variable. One
ansible-playbook run covers every case: each case is a host of its own, on the local connection;
nothing is changed. No output of the run may contain an API key."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import validation  # tests/unit/validation.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "a1" * 32
KEY = "K" * 24 + "-good-key-0123456789"
SHORT_KEY = "short-secret-4711"


def good(tls_dir: pathlib.Path) -> dict:
    return {
        "haproxy_api_keys": [{"name": "crm", "key": KEY}],
        "haproxy_tls_certificate_file": str(tls_dir / "front.crt"),
        "haproxy_tls_key_file": str(tls_dir / "front.key"),
        "haproxy_backend_group": "nodes",
        "keepalived_vip_cidr": "10.20.0.100/24",
        "keepalived_peer_group": "pair",
        "keepalived_unicast_src_ip": "10.20.0.23",
    }


# case: (variables on top of good(), text the failure must contain; None = must pass)
CASES = {
    "good": ({}, None),
    "good_plain_http": ({"haproxy_tls": False, "haproxy_tls_certificate_file": "", "haproxy_bind_port": 80}, None),
    "good_two_instances": ({"keepalived_extra_instances": [{"name": "second", "vip_cidr": "10.20.0.101/24", "virtual_router_id": 52}]}, None),
    "good_rolling_digests": ({"haproxy_health_digests": [DIGEST, "b2" * 32]}, None),
    # The edge's per-key allowlist and limits (#22).
    "good_key_models_spelled": ({"haproxy_api_keys": [{"name": "crm", "key": KEY, "models": ["library/qwen3:4b", "qwen3-cs:latest"]}]}, None),
    "good_key_every_model": ({"haproxy_api_keys": [{"name": "crm", "key": KEY, "models": ["*"], "max_in_flight": 3}]}, None),
    "key_limit_zero": ({"haproxy_api_keys": [{"name": "crm", "key": KEY, "max_in_flight": 0}]},
                       "haproxy_api_keys[0] (crm): max_in_flight must be a whole number above 0"),
    "key_rate_negative": ({"haproxy_api_keys": [{"name": "crm", "key": KEY, "requests_per_minute": -5}]},
                          "haproxy_api_keys[0] (crm): requests_per_minute must be a whole number above 0"),
    "default_rate_zero": ({"haproxy_api_key_requests_per_minute": 0}, "haproxy_api_key_requests_per_minute"),
    "key_models_empty": ({"haproxy_api_keys": [{"name": "crm", "key": KEY, "models": []}]}, "haproxy_api_keys[0] (crm): models must be"),
    "allowlist_unpinned_model": ({"haproxy_api_keys": [{"name": "crm", "key": KEY, "models": ["llama3:70b"]}]}, "crm: llama3:70b"),
    "default_models_unpinned": ({"haproxy_api_key_models": ["mistral"]}, "crm: mistral"),
    "refused_fields_not_a_list": ({"haproxy_refused_fields": {"keep_alive": True}}, "haproxy_refused_fields"),
    "refused_field_not_a_name": ({"haproxy_refused_fields": ["keep alive\"x"]}, "haproxy_refused_fields must be a list of JSON field names"),
    "no_api_keys": ({"haproxy_api_keys": []}, "haproxy_api_keys is empty"),
    "short_key": ({"haproxy_api_keys": [{"name": "crm", "key": KEY}, {"name": "web", "key": SHORT_KEY}]},
                  "haproxy_api_keys[1] (web): key is shorter than 32 characters"),
    "key_with_space": ({"haproxy_api_keys": [{"name": "crm", "key": KEY + " x"}]}, "haproxy_api_keys[0] (crm): key may hold only"),
    "duplicate_key": ({"haproxy_api_keys": [{"name": "crm", "key": KEY}, {"name": "web", "key": KEY}]}, "haproxy_api_keys[1] (web)"),
    "key_without_name": ({"haproxy_api_keys": [{"key": KEY}]}, "name"),
    "cert_missing": ({"haproxy_tls_certificate_file": "/nonexistent/front.crt"},
                     "haproxy_tls_certificate_file: \"/nonexistent/front.crt\" does not exist on the controller"),
    "key_file_empty": ({"haproxy_tls_key_file": ""}, "haproxy_tls_key_file: is empty"),
    "vip_outside": ({"keepalived_vip_cidr": "10.99.0.100/24"}, "keepalived_vip_cidr: the virtual IP 10.99.0.100/24 is outside"),
    "vip_peer_outside": ({"keepalived_peer_group": "farpair"}, "keepalived_vip_cidr: the virtual IP 10.20.0.100/24 is outside"),
    "vip_is_a_node": ({"keepalived_vip_cidr": "10.20.0.23/24"}, "keepalived_vip_cidr"),
    "vip_without_prefix": ({"keepalived_vip_cidr": "10.20.0.100"}, "keepalived_vip_cidr must be the virtual IP with the prefix length"),
    "vip_empty": ({"keepalived_vip_cidr": ""}, "keepalived_vip_cidr must be"),
    "duplicate_router_id": ({"keepalived_extra_instances": [{"name": "second", "vip_cidr": "10.20.0.101/24", "virtual_router_id": 51}]},
                            "duplicate router ids [51]"),
    "router_id_range": ({"keepalived_virtual_router_id": 300}, "keepalived_virtual_router_id"),
    "extra_vip_outside": ({"keepalived_extra_instances": [{"name": "second", "vip_cidr": "192.168.1.1/24", "virtual_router_id": 52}]},
                          "keepalived_extra_instances (second)"),
    "auth_pass_long": ({"keepalived_auth_pass": "123456789"}, "keepalived_auth_pass must be at most 8 characters"),
    "auth_pass_quote": ({"keepalived_auth_pass": 'ab"cd'}, "keepalived_auth_pass must be at most 8 characters"),
    "vip_is_a_backend_node": ({"keepalived_vip_cidr": "10.20.0.11/24"}, "10.20.0.11 is the address of a host"),
    # Inputs that got through before (#23 item 8), each refused naming the variable.
    "timeout_idle_zero": ({"haproxy_timeout_idle": "0"}, "haproxy_timeout_idle must be a HAProxy time above zero"),
    "check_interval_zero": ({"haproxy_check_interval": 0}, "haproxy_check_interval must be a HAProxy time above zero"),
    "admin_socket_options": ({"haproxy_admin_socket": "/x mode 666 level admin"}, "haproxy_admin_socket must be an absolute path"),
    "host_header_newline": ({"haproxy_backend_host_header": "localhost\nX-Evil: 1"}, "haproxy_backend_host_header must be a host name"),
    "maxconn_huge": ({"haproxy_maxconn": 99999999999}, "haproxy_maxconn"),
    "prometheus_address_words": ({"haproxy_prometheus_address": "not an address; bind *"}, "haproxy_prometheus_address must be"),
    "nodes_share_an_address": ({"haproxy_backend_group": "twins"}, "share an address"),
    "bad_digest": ({"haproxy_health_digests": ["sha256:xyz"]}, "haproxy_health_digests"),
    "no_digest_pinned": ({"haproxy_backend_group": "bare_nodes"}, "haproxy_health_digests"),
    "empty_backend": ({"haproxy_backend_group": "nosuchgroup", "haproxy_health_digests": [DIGEST]}, "haproxy_backend_group"),
    "node_changing_endpoint": ({"haproxy_allowed_endpoints": [{"path": "/api/chat", "methods": ["POST"]},
                                                              {"path": "/api/blobs/sha256:1", "methods": ["HEAD"]}]},
                               "haproxy_allowed_endpoints[1] (/api/blobs/sha256:1): changes a node"),
    "bad_timeout": ({"haproxy_timeout_idle": "five minutes"}, "haproxy_timeout_idle must be a HAProxy time"),
    "bad_bind": ({"haproxy_bind_address": "vip.example"}, "haproxy_bind_address must be an IP address"),
    "bad_port": ({"haproxy_bind_port": 70000}, "haproxy_bind_port must be a port number"),
}

PLAYBOOK = [{
    "name": "Validate the front's inputs",
    "hosts": "cases",
    "gather_facts": False,
    "tasks": [{"name": "Run the validate entry points",
               # "validate", not "validate.yml": the argument-spec entry point is looked up by that exact string.
               "ansible.builtin.include_role": {"name": "{{ item }}", "tasks_from": "validate"},
               "loop": ["haproxy", "keepalived"]}],
}]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("front_validate")
    subprocess.run([sys.executable, str(ROOT / "scripts/lab_secrets.py"), str(work / "secrets")], check=True, capture_output=True)
    base = good(work / "secrets" / "tls")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    pinned = [{"name": "qwen3:4b", "digest": DIGEST}]
    inventory = {"all": {"children": {
        "cases": {"hosts": {name: {**base, **extra, **local} for name, (extra, _) in CASES.items()}},
        "pair": {"hosts": {"pair1": {"ansible_host": "10.20.0.21"}, "pair2": {"ansible_host": "10.20.0.22"}}},
        "farpair": {"hosts": {"far1": {"ansible_host": "10.21.0.5"}}},
        "nodes": {"hosts": {"node1": {"ansible_host": "10.20.0.11", "ollama_models_list": pinned, "ollama_models_cs_name": "qwen3-cs"}}},
        "bare_nodes": {"hosts": {"bare1": {"ansible_host": "10.20.0.12"}}},
        "twins": {"hosts": {name: {"ansible_host": "10.20.0.31", "ollama_models_list": pinned, "ollama_models_cs_name": "qwen3-cs"}
                            for name in ("twin1", "twin2")}},
    }}}
    return validation.run_validation(work, inventory, PLAYBOOK, forks=30)


@pytest.fixture(scope="module")
def outcomes(run) -> dict[str, list[str]]:
    return validation.outcomes(run, CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_validation(outcomes, case):
    validation.check_case(outcomes[case], CASES[case][1], case)


def test_no_api_key_in_the_output(run):
    assert KEY not in run.stdout + run.stderr
    assert SHORT_KEY not in run.stdout + run.stderr
