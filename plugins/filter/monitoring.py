"""Filters shared by the monitoring roles (node_exporter, prometheus) and the playbooks that wire
them to the firewall. Each rule is written once, here:
- monitoring_invalid_networks: the entries of a list that are not an IPv4/IPv6 address or a
  network in CIDR form with zero host bits (the same rule as the firewall role's sources);
- monitoring_firewall_rules: firewall_extra_rules items that open the given TCP ports to the
  monitoring networks (the firewall role validates and applies them).

Found through ``filter_plugins`` in ansible.cfg, like plugins/filter/ollama.py. Stdlib only.
"""

import ipaddress


def monitoring_invalid_networks(values):
    """Entries of `values` that are not a valid network (host bits must be zero)."""
    bad = []
    for value in values or []:
        try:
            ipaddress.ip_network(str(value).strip() if isinstance(value, str) and value.strip() else "-", strict=True)
        except ValueError:
            bad.append(value)
    return bad


def monitoring_firewall_rules(sources, ports, comment="monitoring"):
    """One firewall_extra_rules item per TCP port, open to `sources`; none while `sources` is empty."""
    if not sources:
        return []
    return [{"sources": list(sources), "proto": "tcp", "port": int(port), "comment": "%s %d" % (comment, int(port))}
            for port in ports or []]


class FilterModule:
    def filters(self):
        return {
            "monitoring_invalid_networks": monitoring_invalid_networks,
            "monitoring_firewall_rules": monitoring_firewall_rules,
        }
