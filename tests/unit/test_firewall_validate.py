"""Bad firewall input fails the role's validate entry point (argument spec + tasks/validate.yml)
before any rule changes, and the message names the variable. One ansible-playbook run covers
every case: each case is a host of its own, all on the local connection, nothing is changed."""

from __future__ import annotations

import pathlib
import sys

import pytest
import validation  # tests/unit/validation.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOOD = {"firewall_admin_sources": ["10.0.5.0/24"], "firewall_client_sources": ["10.40.0.0/16", "10.41.0.7"]}

# case: (variables on top of GOOD, text the failure must contain; None = must pass)
CASES = {
    "good": ({}, None),
    "good_extra_rules": ({"firewall_extra_rules": [{"sources": ["10.0.9.0/24"], "proto": "vrrp"},
                                                   {"sources": ["10.0.9.0/24"], "proto": "112"},
                                                   {"sources": ["fd00::/64"], "port": 443, "comment": "haproxy"}]}, None),
    "good_ollama_port": ({"firewall_ollama_port": 8080}, None),
    "admin_empty": ({"firewall_admin_sources": []}, "firewall_admin_sources is empty"),
    # The whole internet is refused unless a site says it means it (#23).
    "client_any": ({"firewall_client_sources": ["0.0.0.0/0"]}, "firewall_client_sources admits every address (0.0.0.0/0)"),
    "monitoring_any_v6": ({"firewall_monitoring_sources": ["::/0"]}, "firewall_monitoring_sources admits every address"),
    "good_client_any_meant": ({"firewall_client_sources": ["0.0.0.0/0"], "firewall_allow_any_source": True}, None),
    "client_bad_octet": ({"firewall_client_sources": ["10.0.0.300/24"]}, "firewall_client_sources has invalid entries"),
    "lb_host_bits": ({"firewall_lb_sources": ["10.1.2.3/8"]}, "firewall_lb_sources has invalid entries"),
    "admin_hostname": ({"firewall_admin_sources": ["bastion.example.com"]}, "firewall_admin_sources has invalid entries"),
    "ssh_port_range": ({"firewall_ssh_port": 70000}, "firewall_ssh_port must be a port number"),
    "ollama_port_zero": ({"firewall_ollama_port": 0}, "firewall_ollama_port must be a port number"),
    "extra_vrrp_with_port": ({"firewall_extra_rules": [{"sources": ["10.0.9.0/24"], "proto": "vrrp", "port": 112}]},
                             "firewall_extra_rules[0]"),
    "extra_unknown_proto": ({"firewall_extra_rules": [{"sources": ["10.0.9.0/24"], "proto": "sctp", "port": 9}]},
                            "firewall_extra_rules[0]"),
    "extra_tcp_no_port": ({"firewall_extra_rules": [{"sources": ["10.0.9.0/24"], "port": 443},
                                                    {"sources": ["10.0.9.0/24"], "proto": "udp"}]}, "firewall_extra_rules[1]"),
    "extra_bad_source": ({"firewall_extra_rules": [{"sources": ["10.0.9.0/33"], "port": 443}]}, "firewall_extra_rules[0]"),
    "extra_no_sources": ({"firewall_extra_rules": [{"port": 443}]}, "sources"),
    "good_monitoring": ({"firewall_monitoring_sources": ["10.10.0.0/24", "10.10.1.5", "fd00::/64"],
                         "firewall_monitoring_ports": [9100, 8405]}, None),
    "good_monitoring_ports_follow_the_handed_ports": ({"firewall_monitoring_sources": ["10.10.0.40"], "firewall_node_exporter_port": 9200}, None),
    "monitoring_not_cidr": ({"firewall_monitoring_sources": ["10.10.0.0/24", "monitoring.example"]},
                            "firewall_monitoring_sources has invalid entries ['monitoring.example']"),
    "monitoring_host_bits": ({"firewall_monitoring_sources": ["10.10.0.5/24"]}, "firewall_monitoring_sources has invalid entries"),
    "monitoring_prefix_too_long": ({"firewall_monitoring_sources": ["10.10.0.0/33"]}, "firewall_monitoring_sources has invalid entries"),
    "monitoring_port_zero": ({"firewall_monitoring_ports": [9100, 0]}, "firewall_monitoring_ports must be port numbers"),
    "monitoring_port_handed_over": ({"firewall_node_exporter_port": 70000}, "firewall_monitoring_ports must be port numbers"),
    "backend_unknown": ({"firewall_backend": "iptables"}, "firewall_backend"),
    "policy_allow": ({"firewall_default_incoming": "allow"}, "firewall_default_incoming"),
    "ssh_port_text": ({"firewall_ssh_port": "ssh"}, "firewall_ssh_port"),
}

PLAYBOOK = [{
    "name": "Validate firewall inputs",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [{"name": "Run the validate entry point",
               # "validate", not "validate.yml": ansible-core picks the argument-spec entry point by
               # the exact tasks_from string, so only this spelling runs the spec's checks too.
               "ansible.builtin.include_role": {"name": "firewall", "tasks_from": "validate"}}],
}]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list[str]]:
    work = tmp_path_factory.mktemp("firewall_validate")
    hosts = {name: {**GOOD, **extra, "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
             for name, (extra, _) in CASES.items()}
    return validation.outcomes(validation.run_validation(work, {"all": {"hosts": hosts}}, PLAYBOOK), CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_validation(outcomes, case):
    validation.check_case(outcomes[case], CASES[case][1], case)
