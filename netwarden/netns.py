"""Hosts made of Linux network namespaces, joined by veth pairs or a bridge.

Used by the live demo (``make demo``), the live benchmarks and, through
``tests/fixtures/netns.py``, the tests. Needs root and iproute2 (:func:`unavailable_reason`
says why it cannot run here)::

    with Topology(["a", "b"]) as topo:
        link = topo.link("a", "b")            # veth pair a <-> b, IPv4 + IPv6
        topo.run("b", ["ip", "addr"])         # a command inside host b
        proc = topo.popen("a", [sys.executable, "-c", "..."])

* Every namespace is named ``<prefix><pid>-<random>-<host>`` (prefix ``nwt-`` unless
  given); nothing is created in, or changed on, the caller's namespace (veth ends are
  created directly inside their namespaces).
* Addresses are private and exist only inside the namespaces: link ``N`` (1, 2, ...) is
  ``10.231.N.0/24`` and ``fd00:231:N::/64`` (``nodad``), side a ``.1``/``::1``, side b
  ``.2``/``::2``. A LAN (:meth:`Topology.lan`, a bridge in a namespace of its own) is
  ``10.231.200.0/24`` / ``fd00:231:200::/64``, host ``i`` of the list ``.i+1``.
* :meth:`Topology.close` (also at ``with`` exit, failures included) kills whatever still
  runs inside the namespaces and deletes them. :func:`clean_stale` deletes the namespaces
  of earlier processes that died without cleaning up (their pid no longer runs); it never
  touches a live process's namespaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Final

__all__ = ["LAN_NET", "PREFIX", "Lan", "Link", "NetnsError", "Topology", "clean_stale",
           "run_ip", "unavailable_reason"]

PREFIX: Final = "nwt-"
LAN_NET: Final = 200
_HOST_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_PREFIX_RE = re.compile(r"^[a-z]{1,6}-$")
_CLONE_NEWNET = 0x40000000


class NetnsError(RuntimeError):
    """A namespace command failed (its stderr is in the message)."""


def run_ip(*args: str, timeout: float = 15.0, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    """``ip ARGS...``; raises :class:`NetnsError` with its stderr when it fails and ``check``."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


@functools.cache
def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can (checked once)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 'ip' is not installed"
    probe = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}-probe"
    try:
        made = run_ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"'ip netns add' does not work here: {made.stderr.strip()}"
    except (OSError, subprocess.SubprocessError) as e:
        return f"'ip netns' does not work here: {e}"
    finally:
        run_ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(ns: str) -> None:
    """Kill every process that runs in namespace ``ns``, then wait a little for them."""
    for _ in range(3):
        out = run_ip("netns", "pids", ns, check=False).stdout.split()
        pids = [int(p) for p in out if p.isdigit() and int(p) != os.getpid()]
        if not pids:
            return
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.05)


@contextlib.contextmanager
def _in_netns(path: str) -> Iterator[None]:
    libc = ctypes.CDLL(None, use_errno=True)
    back = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise NetnsError(f"setns {path}: {os.strerror(err)}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if libc.setns(back, _CLONE_NEWNET) != 0:  # pragma: no cover - cannot recover
                err = ctypes.get_errno()
                raise NetnsError(f"cannot return to the caller's namespace: "
                                 f"{os.strerror(err)}")
    finally:
        os.close(back)


def _delete(ns: str) -> None:
    _kill_inside(ns)
    run_ip("netns", "del", ns, check=False)


def clean_stale(prefix: str = PREFIX) -> list[str]:
    """Delete ``prefix`` namespaces left by processes that no longer run; their names."""
    name_re = re.compile(rf"^{re.escape(prefix)}(\d+)-[0-9a-f]+-[a-z0-9]+$")
    gone = []
    for line in run_ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = name_re.match(name)
        if m and not _alive(int(m.group(1))):
            _delete(name)
            gone.append(name)
    return gone


@dataclasses.dataclass(frozen=True)
class Link:
    """A veth pair between two hosts, with both ends' names and addresses."""

    index: int
    a: str
    b: str
    ifname_a: str
    ifname_b: str
    v4_a: str
    v4_b: str
    v6_a: str
    v6_b: str

    def ifname(self, host: str) -> str:
        return self.ifname_a if host == self.a else self.ifname_b

    def addr(self, host: str, version: int = 4) -> str:
        """The address of ``host`` on this link."""
        if host not in (self.a, self.b):
            raise KeyError(f"{host!r} is not on link {self.a}-{self.b}")
        if version == 4:
            return self.v4_a if host == self.a else self.v4_b
        return self.v6_a if host == self.a else self.v6_b


@dataclasses.dataclass(frozen=True)
class Lan:
    """Hosts on one bridge: each host's interface name and addresses."""

    ifname: str
    v4: dict[str, str]
    v6: dict[str, str]

    def addr(self, host: str, version: int = 4) -> str:
        return self.v4[host] if version == 4 else self.v6[host]


class Topology:
    """Hosts (network namespaces) and the links between them; see the module docstring."""

    def __init__(self, hosts: Sequence[str] = ("a", "b"), *, prefix: str = PREFIX) -> None:
        for h in hosts:
            if not _HOST_RE.match(h):
                raise ValueError(f"host name {h!r}: use 1-8 lower-case letters/digits")
        if len(set(hosts)) != len(hosts):
            raise ValueError(f"host names repeat: {list(hosts)}")
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"namespace prefix {prefix!r}: use 1-6 lower-case letters and "
                             "a '-'")
        self.prefix = prefix
        self.token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.hosts = tuple(hosts)
        self.links: list[Link] = []
        self.lans: list[Lan] = []
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[str]] = []
        clean_stale(prefix)
        try:
            for h in self.hosts:
                self._add_ns(h)
        except BaseException:
            self.close()
            raise

    def ns(self, host: str) -> str:
        """The namespace name of ``host``."""
        if host not in self.hosts and host != "sw":
            raise KeyError(f"no host {host!r} (hosts: {', '.join(self.hosts)})")
        return f"{self.prefix}{self.token}-{host}"

    def _add_ns(self, host: str) -> str:
        ns = f"{self.prefix}{self.token}-{host}"
        run_ip("netns", "add", ns)
        self._namespaces.append(ns)
        run_ip("-n", ns, "link", "set", "lo", "up")
        return ns

    # ------------------------------------------------------------------ links

    def link(self, a: str, b: str, *, mtu: int | None = None) -> Link:
        """A veth pair between hosts ``a`` and ``b``, up, with IPv4 and IPv6 addresses."""
        index = len(self.links) + 1
        if index >= LAN_NET:
            raise ValueError("too many links")
        ia, ib = f"nw{index}-{b}"[:15], f"nw{index}-{a}"[:15]
        run_ip("-n", self.ns(a), "link", "add", ia, "type", "veth", "peer", "name", ib,
               "netns", self.ns(b))
        link = Link(index, a, b, ia, ib, f"10.231.{index}.1", f"10.231.{index}.2",
                    f"fd00:231:{index}::1", f"fd00:231:{index}::2")
        for host, ifname in ((a, ia), (b, ib)):
            self._configure(host, ifname, link.addr(host, 4), link.addr(host, 6), mtu)
        self.links.append(link)
        return link

    def lan(self, hosts: Sequence[str] | None = None, *, mtu: int | None = None) -> Lan:
        """Hosts joined by a bridge (in a namespace of its own, ``sw``): one address each."""
        if self.lans:
            raise ValueError("one LAN per topology")
        members = list(hosts if hosts is not None else self.hosts)
        if "sw" in self.hosts:
            raise ValueError("a LAN needs the host name 'sw' for its bridge")
        sw = self._add_ns("sw")
        run_ip("-n", sw, "link", "add", "br0", "type", "bridge")
        run_ip("-n", sw, "link", "set", "br0", "up")
        lan = Lan("lan0", {}, {})
        for i, h in enumerate(members):
            port = f"p{i}-{h}"[:15]
            run_ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "lan0",
                   "netns", self.ns(h))
            run_ip("-n", sw, "link", "set", port, "master", "br0")
            run_ip("-n", sw, "link", "set", port, "up")
            lan.v4[h] = f"10.231.{LAN_NET}.{i + 1}"
            lan.v6[h] = f"fd00:231:{LAN_NET}::{i + 1:x}"
            self._configure(h, "lan0", lan.v4[h], lan.v6[h], mtu)
        self.lans.append(lan)
        return lan

    def _configure(self, host: str, ifname: str, v4: str, v6: str, mtu: int | None) -> None:
        ns = self.ns(host)
        run_ip("-n", ns, "addr", "add", f"{v4}/24", "dev", ifname)
        run_ip("-n", ns, "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
        if mtu is not None:
            run_ip("-n", ns, "link", "set", ifname, "mtu", str(mtu))
        run_ip("-n", ns, "link", "set", ifname, "up")

    def addresses(self, host: str) -> list[str]:
        """The addresses this topology gave ``host`` (plus loopback)."""
        out = ["127.0.0.1", "::1"]
        for link in self.links:
            if host in (link.a, link.b):
                out += [link.addr(host, 4), link.addr(host, 6)]
        for lan in self.lans:
            if host in lan.v4:
                out += [lan.v4[host], lan.v6[host]]
        return [str(ipaddress.ip_address(a)) for a in out]

    # ------------------------------------------------------------------ commands

    @contextlib.contextmanager
    def enter(self, host: str) -> Iterator[None]:
        """Run the calling thread inside ``host`` for the ``with`` block.

        Only this thread moves (setns); sockets opened inside stay in ``host`` afterwards,
        so a capture can be opened in a namespace and read from the caller's own.
        """
        with _in_netns(f"/var/run/netns/{self.ns(host)}"):
            yield

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside ``host``."""
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def run(self, host: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host`` and wait (at most ``timeout`` s, then it is killed)."""
        proc = subprocess.run(self.command(host, argv), capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise NetnsError(f"{host}: {' '.join(argv)}: exit {proc.returncode}: "
                             f"{proc.stderr.strip()[-2000:]}")
        return proc

    def popen(self, host: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """Start ``argv`` inside ``host`` (stdout/stderr piped, text, unless ``kwargs`` say
        otherwise); it is killed at :meth:`close` if still running."""
        opts: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
                                   "text": True}
        opts.update(kwargs)
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            self.command(host, argv), **opts)
        self._procs.append(proc)
        return proc

    def python(self, host: str, code: str, *args: str, timeout: float = 30.0
               ) -> subprocess.CompletedProcess[str]:
        """Run Python ``code`` (this interpreter, this venv) inside ``host``."""
        return self.run(host, [sys.executable, "-c", code, *args], timeout=timeout)

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        """Kill what runs inside the namespaces and delete them (idempotent)."""
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
                p.communicate(timeout=5)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            _delete(ns)
        self._namespaces.clear()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
