"""The prefix-preserving anonymiser: keyed, deterministic across processes, subnets kept."""

from __future__ import annotations

import ipaddress
import random
import subprocess
import sys
import time

import pytest

from netwarden.collector.anonymize import PrefixAnonymizer

SAMPLE = ["10.0.0.1", "10.0.0.2", "192.168.1.77", "8.8.8.8", "2001:db8::1",
          "fe80::1ff:fe23:4567:890a", "::ffff:172.16.5.4"]


def _common_prefix(a: int, b: int, bits: int) -> int:
    diff = a ^ b
    return bits if diff == 0 else bits - diff.bit_length()


def test_same_key_same_mapping_in_another_process() -> None:
    here = [PrefixAnonymizer("secret").anonymize_text(a) for a in SAMPLE]
    code = ("import sys; from netwarden.collector.anonymize import PrefixAnonymizer as P; "
            "a = P('secret'); print('\\n'.join(a.anonymize_text(x) for x in sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, *SAMPLE], check=True,
                         capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "12345"}).stdout.split()
    assert out == here
    assert [PrefixAnonymizer(b"secret").anonymize_text(a) for a in SAMPLE] == here


def test_different_keys_different_mappings() -> None:
    one = [PrefixAnonymizer("key-one").anonymize_text(a) for a in SAMPLE]
    two = [PrefixAnonymizer("key-two").anonymize_text(a) for a in SAMPLE]
    assert all(a != b for a, b in zip(one, two, strict=True))
    assert all(a != o for a, o in zip(SAMPLE, one, strict=True))


@pytest.mark.parametrize("bits", [32, 128])
def test_prefix_preserved_exactly(bits: int) -> None:
    anon = PrefixAnonymizer("prefix test")
    rng = random.Random(7)
    seen = set()
    for _ in range(300):
        a = rng.getrandbits(bits)
        k = rng.randrange(bits + 1)
        # b shares exactly k leading bits with a (or equals it when k == bits)
        b = a if k == bits else (a ^ (1 << (bits - 1 - k))) ^ (rng.getrandbits(bits - 1 - k)
                                                                if k < bits - 1 else 0)
        assert _common_prefix(a, b, bits) == k
        x, y = anon.anonymize_int(a, bits), anon.anonymize_int(b, bits)
        assert _common_prefix(x, y, bits) == k
        assert 0 <= x < (1 << bits)
        seen.add(x)
    assert len(seen) > 250  # a bijection on distinct inputs, not a constant


def test_families_kept() -> None:
    anon = PrefixAnonymizer("fam")
    v4 = anon.anonymize(ipaddress.IPv4Address("192.0.2.10"))
    assert isinstance(v4, ipaddress.IPv4Address)
    v6 = anon.anonymize(ipaddress.IPv6Address("2001:db8::10"))
    assert isinstance(v6, ipaddress.IPv6Address) and v6.ipv4_mapped is None
    mapped = anon.anonymize(ipaddress.IPv6Address("::ffff:192.0.2.10"))
    assert isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped == v4
    stored = anon.anonymize16(b"\x00" * 10 + b"\xff\xff" + v4.packed)
    assert stored[:12] == b"\x00" * 10 + b"\xff\xff"
    assert anon.anonymize16(b"\x00" * 16) == b"\x00" * 16


def test_subnet_stays_subnet() -> None:
    anon = PrefixAnonymizer("net")
    net = ipaddress.ip_network("10.20.0.0/16")
    outs = {ipaddress.ip_address(anon.anonymize_text(f"10.20.{i}.{j}"))
            for i in range(0, 256, 17) for j in (1, 200)}
    first = next(iter(outs))
    anon_net = ipaddress.ip_network(f"{first}/16", strict=False)
    assert all(o in anon_net for o in outs) and anon_net != net


def test_bad_input_named() -> None:
    with pytest.raises(ValueError, match="empty"):
        PrefixAnonymizer("")
    with pytest.raises(ValueError, match="not an IP address: 'nope'"):
        PrefixAnonymizer("k").anonymize_text("nope")
    with pytest.raises(ValueError, match="32 or 128"):
        PrefixAnonymizer("k").anonymize_int(1, 64)


def test_throughput_and_cache() -> None:
    anon = PrefixAnonymizer("speed")
    rng = random.Random(1)
    values = [rng.getrandbits(32) for _ in range(2000)]
    t0 = time.perf_counter()
    for v in values:
        anon.anonymize_int(v, 32)
    cold = len(values) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for v in values:
        anon.anonymize_int(v, 32)
    warm = len(values) / (time.perf_counter() - t0)
    print(f"IPv4 addresses/s: cold {cold:,.0f}, cached {warm:,.0f}")
    assert cold > 1000
    assert warm > 5 * cold
