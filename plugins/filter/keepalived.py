"""Address checks for the keepalived role (Python's ipaddress; netaddr is not needed)."""

from __future__ import annotations

import ipaddress


def keepalived_valid_vip(value):
    """True for an interface-style address with prefix, e.g. 10.20.0.100/24."""
    text = str(value or "")
    if "/" not in text:
        return False
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def keepalived_outside(addresses, vip_cidr):
    """Addresses (of the pair) that are not in the VIP's network, or are the VIP itself."""
    try:
        iface = ipaddress.ip_interface(str(vip_cidr))
    except ValueError:
        return list(addresses or [])
    bad = []
    for address in addresses or []:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            bad.append(str(address))
            continue
        if ip not in iface.network or ip == iface.ip:
            bad.append(str(address))
    return bad


def keepalived_duplicates(values):
    seen, dup = set(), []
    for value in values or []:
        if value in seen and value not in dup:
            dup.append(value)
        seen.add(value)
    return dup


class FilterModule:
    def filters(self):
        return {
            "keepalived_valid_vip": keepalived_valid_vip,
            "keepalived_outside": keepalived_outside,
            "keepalived_duplicates": keepalived_duplicates,
        }
