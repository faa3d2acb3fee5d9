"""Offline IP geo/ASN lookup: load time, memory, lookups/s, answers for special addresses.

    .venv/bin/python bench/geo_lookup.py [--lookups 200000] [--json]

Each measurement runs in a fresh Python process (geoip2fast keeps its tables in module
globals, and memory is only comparable from a clean start): load seconds and resident
memory growth (RSS after loading minus before, from /proc/self/statm), lookups per second
over ``--lookups`` random public addresses (seed 1, the same for every candidate; IPv6
ones from 2000::/3), and what the candidate answers for private/reserved addresses.

Candidates, each measured when importable in the running interpreter:

* ``geoip2fast:<file>``: every data file the geoip2fast package ships (raw ``lookup``);
* ``netwarden.collector.geo``: what the project uses (IPv4 file, then the IPv4+IPv6 file;
  the first lookup of an address and a cached one);
* ``iptocc`` (country only, data compiled into the extension) and ``geolite2``
  (maxminddb-geolite2: a 2018 GeoLite2-City mmdb, country only), if installed; compare
  them from a throwaway venv holding them, e.g. ``/tmp/geovenv/bin/python
  bench/geo_lookup.py``.

Nothing is fetched: every candidate reads data installed with its package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SPECIAL = ["10.0.0.1", "127.0.0.1", "100.64.0.1", "224.0.0.1", "192.0.2.1", "::1",
           "fe80::1", "fd00::1", "ff02::1", "2001:db8::1", "::ffff:8.8.8.8"]
KNOWN = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"]

# Run in the child: builds `lookup` (address -> printable answer) and `ready` (load).
_PRELUDE = textwrap.dedent("""
    import ipaddress, json, os, random, sys, time, warnings
    warnings.simplefilter("ignore")
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    def addresses(n, v6):
        rnd = random.Random(1)
        out = []
        while len(out) < n:
            if v6:  # global unicast 2000::/3
                out.append(str(ipaddress.IPv6Address((1 << 125) | rnd.getrandbits(125))))
            else:
                a = rnd.randint(1, 223)
                if a in (10, 127):
                    continue
                out.append(f"{a}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}")
        return out
    N = int(sys.argv[1])
""")

_CANDIDATES: dict[str, str] = {
    "geoip2fast": """
        from geoip2fast import GeoIP2Fast
        FILE = sys.argv[2]
        def load():
            global G
            G = GeoIP2Fast(geoip2fast_data_file=FILE)
        def lookup(a):
            r = G.lookup(a)
            return f"{r.country_code} {r.asn_name or '-'}"
        V6 = "ipv6" in FILE
    """,
    "netwarden": """
        from netwarden.collector import geo
        FILE = sys.argv[2]
        def load():
            geo.lookup("8.8.8.8" if "ipv6" not in FILE else "2001:4860:4860::8888")
        def lookup(a):
            r = geo.lookup(a)
            return f"{r.country} {r.as_name}"
        V6 = "ipv6" in FILE
    """,
    "iptocc": """
        import iptocc
        def load():
            iptocc.country_code("8.8.8.8")
        def lookup(a):
            return str(iptocc.country_code(a))
        V6 = True
    """,
    "geolite2": """
        from geolite2 import geolite2
        def load():
            global R
            R = geolite2.reader()
            R.get("8.8.8.8")
        def lookup(a):
            r = R.get(a) or {}
            return str((r.get("country") or r.get("registered_country") or {}).get("iso_code"))
        V6 = True
    """,
}

_MEASURE = textwrap.dedent("""
    before = rss(); t = time.perf_counter(); load()
    out = {"load_s": time.perf_counter() - t, "rss_mib": (rss() - before) / 2**20}
    for name, v6 in (("ipv4", False), ("ipv6", True)):
        if v6 and not V6:
            continue
        addrs = addresses(N, v6)
        t = time.perf_counter()
        for a in addrs:
            lookup(a)
        out[name + "_per_s"] = N / (time.perf_counter() - t)
        if CACHED:
            t = time.perf_counter()
            for a in addrs:
                lookup(a)
            out[name + "_cached_per_s"] = N / (time.perf_counter() - t)
    out["answers"] = {a: lookup(a) for a in json.loads(sys.argv[3])}
    print(json.dumps(out))
""")


def _measure(kind: str, file: str, lookups: int) -> dict[str, Any] | None:
    code = (_PRELUDE + textwrap.dedent(_CANDIDATES[kind])
            + f"CACHED = {kind == 'netwarden'}\n" + _MEASURE)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, "-c", code, str(lookups), file,
                           json.dumps(KNOWN + SPECIAL)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        if "ModuleNotFoundError" in last:
            return None
        raise SystemExit(f"{kind} {file}: {last}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _geoip2fast_files() -> list[str]:
    try:
        import geoip2fast
    except ImportError:
        return []
    folder = Path(geoip2fast.__file__).parent
    return sorted(p.name for p in folder.glob("geoip2fast*.dat.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    runs: list[tuple[str, str]] = [("geoip2fast", f) for f in _geoip2fast_files()]
    runs += [("netwarden", "geoip2fast-asn.dat.gz"), ("netwarden", "geoip2fast-asn-ipv6.dat.gz"),
             ("iptocc", ""), ("geolite2", "")]
    results: dict[str, dict[str, Any]] = {}
    for kind, file in runs:
        got = _measure(kind, file, args.lookups)
        if got is not None:
            results[f"{kind}:{file}" if file else kind] = got
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'candidate':44} {'load s':>7} {'RSS MiB':>8} {'v4/s':>9} {'v6/s':>9} "
          f"{'v4 cached/s':>11}")
    for name, r in results.items():
        v6 = r.get("ipv6_per_s")
        cached = r.get("ipv4_cached_per_s")
        print(f"{name:44} {r['load_s']:7.3f} {r['rss_mib']:8.1f} {r['ipv4_per_s']:9,.0f} "
              f"{'' if v6 is None else format(v6, ',.0f'):>9} "
              f"{'' if cached is None else format(cached, ',.0f'):>11}")
    print("\nanswers (country, AS name):")
    names = list(results)
    for address in KNOWN + SPECIAL:
        print(f"  {address:22} " + " | ".join(f"{results[n]['answers'][address]}"
                                              for n in names))
    print("  columns: " + " | ".join(names))


if __name__ == "__main__":
    main()
