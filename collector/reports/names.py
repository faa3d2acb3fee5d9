"""Names of IP protocol numbers and ethertypes, as the reports print them."""

from __future__ import annotations

from typing import Final

IP_PROTOCOLS: Final = {
    1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp",
    51: "ah", 58: "icmpv6", 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp",
}
ETHERTYPES: Final = {
    0x0800: "ipv4", 0x0806: "arp", 0x86DD: "ipv6", 0x8035: "rarp", 0x88CC: "lldp",
    0x8100: "vlan", 0x888E: "eapol", 0x8863: "pppoed", 0x8864: "pppoes",
}


def ip_proto_name(number: int) -> str:
    """``tcp``, ``udp``, ``icmp``...; ``proto-N`` for a number without a name."""
    return IP_PROTOCOLS.get(number, f"proto-{number}")


def network_name(ip_version: int, ethertype: int) -> str:
    """``ipv4``/``ipv6`` for an IP record, else the ethertype's name (``0xNNNN`` if none;
    ``other`` when the frame has no ethertype, e.g. 802.3/LLC or an unknown link type)."""
    if ip_version == 4:
        return "ipv4"
    if ip_version == 6:
        return "ipv6"
    if ethertype == 0:
        return "other"
    return ETHERTYPES.get(ethertype, f"0x{ethertype:04x}")
