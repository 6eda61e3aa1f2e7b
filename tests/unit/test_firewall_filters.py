"""The firewall role's filter plugin: address checks and the desired, deduplicated rule set."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("firewall_filters", ROOT / "plugins/filter/firewall.py")
fw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fw)


@pytest.mark.parametrize("value", ["10.0.0.0/8", "172.28.30.21", "172.28.30.21/32", "0.0.0.0/0", "fd00::/64", "2001:db8::1"])
def test_valid_networks_pass(value):
    assert fw.firewall_invalid_cidrs([value]) == []


@pytest.mark.parametrize("value", ["10.0.0.300/24", "10.1.2.3/8", "10.0.0.0/33", "fd00::1/64", "example.com", "", " ", None, 42])
def test_invalid_networks_are_reported(value):
    assert fw.firewall_invalid_cidrs(["10.0.0.0/8", value]) == [value]


@pytest.mark.parametrize(("given", "canonical"), [("tcp", "tcp"), ("UDP", "udp"), ("vrrp", "vrrp"), ("112", "vrrp"), (112, "vrrp"),
                                                  ("50", "esp"), ("gre", "gre"), ("sctp", ""), ("6", ""), ("", "")])
def test_protocol_names_and_numbers(given, canonical):
    assert fw.firewall_protocol(given) == canonical


def test_address_in_networks():
    assert fw.firewall_address_in("10.1.2.3", ["192.168.0.0/16", "10.0.0.0/8"])
    assert not fw.firewall_address_in("11.1.2.3", ["10.0.0.0/8"])
    assert not fw.firewall_address_in("10.1.2.3", ["not-a-net"])
    assert not fw.firewall_address_in("garbage", ["0.0.0.0/0"])
    assert fw.firewall_address_in("fd00::5", ["fd00::/64"])


def test_rules_are_normalised_for_both_backends():
    rules = fw.firewall_rules(
        [
            {"sources": ["172.28.30.1", "fd00::/64"], "port": 22, "proto": "tcp", "comment": "ssh"},
            {"sources": ["172.28.30.0/24"], "proto": "112", "comment": "vrrp"},
        ],
        "ollama-fleet",
    )
    assert [r["key"] for r in rules] == ["allow in tcp 22 172.28.30.1", "allow in tcp 22 fd00::/64", "allow in vrrp any 172.28.30.0/24"]
    # firewalld lists rich rules in exactly this form; the role compares strings.
    assert rules[0]["rich_rule"] == 'rule family="ipv4" source address="172.28.30.1/32" port port="22" protocol="tcp" accept'
    assert rules[1]["rich_rule"] == 'rule family="ipv6" source address="fd00::/64" port port="22" protocol="tcp" accept'
    assert rules[2]["rich_rule"] == 'rule family="ipv4" source address="172.28.30.0/24" protocol value="vrrp" accept'
    assert rules[2]["port"] is None
    assert rules[0]["comment"] == "ollama-fleet: ssh"


def test_duplicates_collapse_and_the_first_comment_wins():
    rules = fw.firewall_rules(
        [
            {"sources": ["10.0.0.5/32"], "port": 11434, "comment": "clients"},
            {"sources": ["10.0.0.5", "10.0.0.6"], "port": "11434", "comment": "load balancers"},
        ],
        "m",
    )
    assert [(r["ufw_source"], r["comment"]) for r in rules] == [("10.0.0.5", "m: clients"), ("10.0.0.6", "m: load balancers")]


def test_empty_source_lists_give_no_rules():
    assert fw.firewall_rules([{"sources": [], "port": 11434}], "m") == []


USER_RULES = """
### tuple ### allow tcp 22 0.0.0.0/0 any 172.28.30.1 in comment=6f6c6c616d612d666c6565743a20737368
-A ufw-user-input -p tcp --dport 22 -s 172.28.30.1 -j ACCEPT
### tuple ### allow vrrp any 0.0.0.0/0 any 172.28.30.0/24 in comment=6f6c6c616d612d666c656574
### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in comment=68616e64
"""
USER6_RULES = "### tuple ### deny tcp 11434 ::/0 any fd00::/64 in comment=6f6c6c616d612d666c6565743a2078\n"


def test_only_marked_ufw_rules_are_managed():
    found = fw.firewall_ufw_managed([USER_RULES, USER6_RULES], "ollama-fleet")
    assert [r["key"] for r in found] == [
        "allow in tcp 22 172.28.30.1",
        "allow in vrrp any 172.28.30.0/24",
        "deny in tcp 11434 fd00::/64",  # ours, but never a desired key: it gets deleted
    ]
    assert found[1]["port"] is None
    assert found[0]["comment"] == "ollama-fleet: ssh"


def test_port_rules_open_each_port_to_the_sources_and_nothing_without_sources():
    groups = fw.firewall_port_rules(["10.10.0.40/32", "fd00::/64"], [9100, "8405"], "monitoring")
    assert groups == [
        {"sources": ["10.10.0.40/32", "fd00::/64"], "port": 9100, "proto": "tcp", "comment": "monitoring 9100"},
        {"sources": ["10.10.0.40/32", "fd00::/64"], "port": 8405, "proto": "tcp", "comment": "monitoring 8405"},
    ]
    keys = [r["key"] for r in fw.firewall_rules(groups, "ollama-fleet")]
    assert keys == ["allow in tcp 9100 10.10.0.40", "allow in tcp 9100 fd00::/64", "allow in tcp 8405 10.10.0.40", "allow in tcp 8405 fd00::/64"]
    assert fw.firewall_port_rules([], [9100, 8405], "monitoring") == []
    assert fw.firewall_port_rules(None, [9100], "monitoring") == []
