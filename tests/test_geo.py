"""Country and AS of addresses from the data geoip2fast ships (no network needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from netwarden.collector import geo
from netwarden.collector.geo import PRIVATE, GeoInfo


def test_known_public_addresses() -> None:
    google = GeoInfo("US", "United States", None, "GOOGLE")
    assert geo.lookup("8.8.8.8") == google
    assert geo.lookup("8.8.4.4") == google
    assert geo.lookup("2001:4860:4860::8888") == google
    assert geo.lookup("1.1.1.1").as_name == "CLOUDFLARENET"
    assert geo.lookup("2606:4700:4700::1111") == GeoInfo("US", "United States", None,
                                                         "CLOUDFLARENET")
    assert geo.lookup("81.2.69.160").country == "GB"
    # the store's IPv4-mapped form is the IPv4 address (geoip2fast alone reads it as
    # 255.255.255.255, "reserved for broadcast")
    assert geo.lookup("::ffff:8.8.8.8") == google


@pytest.mark.parametrize("address", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "100.64.0.1", "169.254.1.1",
    "0.0.0.0", "255.255.255.255", "224.0.0.1", "192.0.2.1", "240.0.0.1",
    "::1", "::", "fe80::1", "fd00::1", "ff02::1", "2001:db8::1", "::ffff:10.0.0.1",
    "192.88.99.1",  # public by Python's rules, but the data marks it (6to4 relay anycast)
])
def test_private_and_reserved(address: str) -> None:
    info = geo.lookup(address)
    assert info == PRIVATE
    assert (info.country, info.country_name, info.asn, info.as_name) == (
        "--", "private", None, "private")
    assert info.private


def test_is_public() -> None:
    assert geo.is_public("8.8.8.8")
    assert geo.is_public("2001:4860:4860::8888")
    assert geo.is_public("::ffff:1.1.1.1")
    assert not geo.is_public("10.0.0.1")
    assert not geo.is_public("ff02::1")
    assert not geo.is_public("224.0.0.251")


def test_lookup_many_and_bad_address() -> None:
    got = geo.lookup_many(["8.8.8.8", "10.0.0.1", "8.8.8.8"])
    assert list(got) == ["8.8.8.8", "10.0.0.1"]
    assert got["10.0.0.1"] == PRIVATE
    with pytest.raises(ValueError):
        geo.lookup("not-an-address")


# Run in a fresh process (the database is process-wide, and geoip2fast keeps its tables in
# module globals) with every way out to the network made to fail loudly.
_SCRIPT = textwrap.dedent("""
    import json, socket, urllib.request
    attempts = []
    def refuse(name):
        def fail(*args, **kwargs):
            attempts.append(name)
            raise OSError("network use: " + name)
        return fail
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.socket.sendto = refuse("sendto")
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.gethostbyaddr = refuse("gethostbyaddr")
    socket.create_connection = refuse("create_connection")
    urllib.request.urlopen = refuse("urlopen")
    from netwarden.collector import geo
    db = geo.database()
    out = {"before": db.loaded}
    out["private"] = geo.lookup("10.0.0.1").country
    out["after_private"] = db.loaded
    out["v4"] = geo.lookup("8.8.8.8").as_name
    out["gap_v4_file"] = geo.lookup("6.0.0.1").as_name
    out["after_v4"] = db.loaded
    out["v6"] = geo.lookup("2001:4860:4860::8888").as_name
    out["after_v6"] = db.loaded
    out["v4_again"] = geo.lookup("1.0.0.1").as_name
    out["gap_v6_file"] = geo.lookup("6.0.0.2").as_name
    out["after_v4_again"] = db.loaded
    out["source"] = db.source
    out["attempts"] = attempts
    print(json.dumps(out))
""")


def _isolated() -> list[str]:
    """``unshare -n`` (a network namespace with no interface up) when it works here."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ["unshare", "-n"] if probe.returncode == 0 else []


def test_loads_only_what_is_needed_and_never_uses_the_network() -> None:
    prefix = _isolated()
    done = subprocess.run([*prefix, sys.executable, "-c", _SCRIPT], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["attempts"] == []
    # nothing loaded for a private address; the IPv4 file until an IPv6 address comes
    assert out["before"] is None and out["after_private"] is None
    assert out["private"] == "--"
    assert (out["v4"], out["after_v4"]) == ("GOOGLE", "geoip2fast-asn.dat.gz")
    assert (out["v6"], out["after_v6"]) == ("GOOGLE", "geoip2fast-asn-ipv6.dat.gz")
    assert (out["v4_again"], out["after_v4_again"]) == ("CLOUDFLARENET",
                                                        "geoip2fast-asn-ipv6.dat.gz")
    # 6.0.0.0/8 has a country but no AS network: with the IPv6 file geoip2fast alone
    # answers the AS before the gap (YANDEX LLC); both files must say unknown
    assert out["gap_v4_file"] == "unknown"
    assert out["gap_v6_file"] == "unknown"
    assert out["source"].startswith("MAXMIND:GeoLite2-CountryASN-IPv4IPv6")
