"""Filters of the `firewall` role: address checks and the desired rule set.

Stdlib only (ipaddress): the controller needs no netaddr. Every rule is normalised here once,
so both backends compare the host's managed rules with exactly the same desired set.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError

# IP protocols both backends accept without a port, by name and by number.
PORTLESS_PROTOCOLS = {"vrrp": 112, "esp": 50, "ah": 51, "gre": 47, "igmp": 2}
PORT_PROTOCOLS = ("tcp", "udp")
_TUPLE = re.compile(
    r"^### tuple ### (?P<action>\S+) (?P<proto>\S+) (?P<dport>\S+) (?P<dst>\S+) (?P<sport>\S+) (?P<src>\S+) (?P<direction>\S+)"
    r"(?: comment=(?P<comment>[0-9a-fA-F]*))?\s*$"
)


def _network(value):
    """The ip_network for a CIDR or a bare address; ValueError when invalid or host bits are set."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("not an address")
    return ipaddress.ip_network(value.strip(), strict=True)


def firewall_invalid_cidrs(values):
    """Entries of `values` that are not a valid IPv4/IPv6 network (host bits must be zero)."""
    bad = []
    for value in values or []:
        try:
            _network(value)
        except (ValueError, TypeError):
            bad.append(value)
    return bad


def firewall_any_sources(values):
    """Entries of `values` that admit every address of a family (0.0.0.0/0, ::/0), or more than
    half of it (a /0 or /1 written another way): the whole internet, not a site's network."""
    wide = []
    for value in values or []:
        try:
            if _network(value).prefixlen <= 1:
                wide.append(value)
        except (ValueError, TypeError):
            continue
    return wide


def firewall_port_rules(sources, ports, comment):
    """One rule group per TCP port of `ports`, open to `sources` (firewall_rules' input); none while
    `sources` is empty. The comment names the port: "<comment> <port>"."""
    if not sources:
        return []
    return [{"sources": list(sources), "port": int(port), "proto": "tcp", "comment": f"{comment} {int(port)}"} for port in ports or []]


def firewall_address_in(address, networks):
    """True when `address` lies in one of `networks` (invalid entries never match)."""
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return False
    for value in networks or []:
        try:
            if ip in _network(value):
                return True
        except (ValueError, TypeError):
            continue
    return False


def firewall_protocol(value):
    """Canonical protocol name (tcp, udp, vrrp...) for a name or an IP protocol number; '' if unknown."""
    text = str(value).strip().lower()
    if text in PORT_PROTOCOLS or text in PORTLESS_PROTOCOLS:
        return text
    for name, number in PORTLESS_PROTOCOLS.items():
        if text == str(number):
            return name
    return ""


def firewall_supported_protocols(_unused=None):
    """Every protocol spelling the role accepts, for error messages."""
    return list(PORT_PROTOCOLS) + [f"{n} ({num})" for n, num in PORTLESS_PROTOCOLS.items()]


def _rule(source, port, proto, comment, marker):
    net = _network(source)
    family = f"ipv{net.version}"
    full = str(net)
    host = net.prefixlen == net.max_prefixlen
    if port is None:
        rich = f'rule family="{family}" source address="{full}" protocol value="{proto}" accept'
    else:
        rich = f'rule family="{family}" source address="{full}" port port="{port}" protocol="{proto}" accept'
    ufw_source = str(net.network_address) if host else full
    return {
        "source": full,
        "family": family,
        "port": port,
        "proto": proto,
        "comment": f"{marker}: {comment}" if comment else marker,
        "ufw_source": ufw_source,
        "key": f"allow in {proto} {port if port is not None else 'any'} {ufw_source}",
        "rich_rule": rich,
    }


def firewall_rules(groups, marker):
    """Desired rules from a list of {sources, port, proto, comment} groups, deduplicated.

    The first group that opens a (source, port, proto) names the rule; later duplicates are dropped.
    """
    rules, seen = [], set()
    for group in groups or []:
        proto = firewall_protocol(group.get("proto", "tcp"))
        if not proto:
            raise AnsibleFilterError(f"unsupported protocol {group.get('proto')!r}")
        port = group.get("port")
        port = int(port) if port not in (None, "") and proto in PORT_PROTOCOLS else None
        for source in group.get("sources") or []:
            try:
                rule = _rule(source, port, proto, group.get("comment") or "", marker)
            except ValueError as exc:
                raise AnsibleFilterError(f"invalid source {source!r}: {exc}") from exc
            if rule["key"] not in seen:
                seen.add(rule["key"])
                rules.append(rule)
    return rules


def firewall_ufw_managed(texts, marker):
    """Rules in ufw's user.rules/user6.rules texts whose comment starts with `marker`."""
    found = []
    for text in texts or []:
        for line in (text or "").splitlines():
            match = _TUPLE.match(line.strip())
            if not match or not match.group("comment"):
                continue
            try:
                comment = bytes.fromhex(match.group("comment")).decode("utf-8", "replace")
            except ValueError:
                continue
            if not comment.startswith(marker):
                continue
            port = None if match.group("dport") == "any" else match.group("dport")
            found.append({
                "action": match.group("action"),
                "proto": match.group("proto"),
                "port": port,
                "ufw_source": match.group("src"),
                "direction": match.group("direction"),
                "comment": comment,
                "key": " ".join(match.group(k) for k in ("action", "direction", "proto", "dport", "src")),
            })
    return found


class FilterModule:
    """Filters of the firewall role."""

    def filters(self):
        return {
            "firewall_address_in": firewall_address_in,
            "firewall_invalid_cidrs": firewall_invalid_cidrs,
            "firewall_any_sources": firewall_any_sources,
            "firewall_port_rules": firewall_port_rules,
            "firewall_protocol": firewall_protocol,
            "firewall_supported_protocols": firewall_supported_protocols,
            "firewall_rules": firewall_rules,
            "firewall_ufw_managed": firewall_ufw_managed,
        }
