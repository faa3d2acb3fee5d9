"""Local TCP/UDP sockets of this network namespace and the processes that own them, from /proc.

The way lsof, nethogs and bandwhich do it, without a helper binary:

* ``/proc/net/{tcp,tcp6,udp,udp6}`` list the sockets of the *reading thread's* network
  namespace: local and remote address and port, state and the socket's inode
  (:func:`read_sockets`). Addresses are returned in the records' 16-byte form (IPv4
  mapped into IPv6, ``::ffff:a.b.c.d``); a socket bound to every address has
  :data:`V4_ANY` (``0.0.0.0``, mapped) or :data:`V6_ANY` (``::``). A socket without an
  inode (TIME_WAIT, or already released) is left out: nothing owns it any more.
* ``/proc/[pid]/fd/*`` are links ``socket:[INODE]`` for the sockets a process holds
  (:func:`find_owners`). Processes are visited from the highest pid down (new sockets
  are usually in new processes) and the walk stops once every wanted inode is found, so
  a socket shared by several processes (after fork) goes to the highest pid holding it.
  The owner's name is its ``comm`` (``/proc/[pid]/comm``, at most 15 characters).

Everything here reads the kernel's files once; :mod:`netwarden.sensor.processes` keeps
the table over time.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Final

from netwarden.sensor.decode import IPPROTO_TCP as TCP
from netwarden.sensor.decode import IPPROTO_UDP as UDP

__all__ = ["PROTOCOLS", "TCP", "TCP_LISTEN", "UDP", "V4_ANY", "V4_PREFIX", "V6_ANY", "Owner", "Socket",
           "SocketFileError", "find_owners", "mapped", "parse_proc_net", "read_sockets"]

TCP_LISTEN: Final = 0x0A
V4_PREFIX: Final = b"\0" * 10 + b"\xff\xff"
V4_ANY: Final = V4_PREFIX + b"\0" * 4
V6_ANY: Final = b"\0" * 16
# /proc/net file -> (IP protocol, IPv6)
PROTOCOLS: Final = {"tcp": (TCP, False), "tcp6": (TCP, True), "udp": (UDP, False),
                    "udp6": (UDP, True)}
_SOCKET_LINK: Final = "socket:["


class SocketFileError(ValueError):
    """A /proc/net line that is not what the kernel writes (file and line in the message)."""


@dataclasses.dataclass(frozen=True)
class Socket:
    """One line of /proc/net/{tcp,tcp6,udp,udp6}."""

    proto: int  # TCP or UDP
    local: bytes  # 16 bytes, IPv4 mapped; V4_ANY / V6_ANY when bound to every address
    lport: int
    remote: bytes  # V4_ANY / V6_ANY when not connected
    rport: int
    state: int  # kernel socket state (TCP_LISTEN...; UDP: 7 unconnected, 1 connected)
    inode: int


@dataclasses.dataclass(frozen=True)
class Owner:
    """A process holding a socket."""

    pid: int
    comm: str


def mapped(addr4: bytes) -> bytes:
    """The 16-byte form of a 4-byte IPv4 address (``::ffff:a.b.c.d``)."""
    return V4_PREFIX + addr4


def _address(text: str, v6: bool) -> bytes:
    """An address as the kernel prints it: 32-bit words in host byte order, hex."""
    if v6:
        if len(text) != 32:
            raise ValueError(f"expected 32 hex digits, got {text!r}")
        raw = b"".join(int(text[i:i + 8], 16).to_bytes(4, sys.byteorder)
                       for i in range(0, 32, 8))
        return raw  # an IPv4-mapped address is already in the records' form
    if len(text) != 8:
        raise ValueError(f"expected 8 hex digits, got {text!r}")
    return mapped(int(text, 16).to_bytes(4, sys.byteorder))


def _endpoint(text: str, v6: bool) -> tuple[bytes, int]:
    addr, sep, port = text.partition(":")
    if not sep:
        raise ValueError(f"expected ADDRESS:PORT, got {text!r}")
    return _address(addr, v6), int(port, 16)


def parse_proc_net(text: str, name: str, source: str | None = None) -> list[Socket]:
    """The sockets listed in the text of ``/proc/net/<name>`` (``name`` a key of
    :data:`PROTOCOLS`); sockets without an inode are left out. ``source`` names the file
    in errors (default ``/proc/net/<name>``)."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown socket table {name!r}: expected one of "
                         f"{', '.join(PROTOCOLS)}")
    proto, v6 = PROTOCOLS[name]
    where = source or f"/proc/net/{name}"
    out: list[Socket] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if n == 1 or not line.strip():
            continue  # the header
        fields = line.split()
        try:
            if len(fields) < 10:
                raise ValueError(f"expected at least 10 fields, got {len(fields)}")
            inode = int(fields[9])
            if inode == 0:
                continue
            local, lport = _endpoint(fields[1], v6)
            remote, rport = _endpoint(fields[2], v6)
            state = int(fields[3], 16)
        except ValueError as exc:
            raise SocketFileError(f"{where}: line {n}: {exc}") from None
        out.append(Socket(proto, local, lport, remote, rport, state, inode))
    return out


def read_sockets(net_dir: str | Path = "/proc/net",
                 names: Iterable[str] = tuple(PROTOCOLS)) -> list[Socket]:
    """Every TCP/UDP socket of this thread's network namespace (a missing table, e.g.
    tcp6 without IPv6, is skipped)."""
    out: list[Socket] = []
    for name in names:
        path = Path(net_dir) / name
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            continue
        out.extend(parse_proc_net(text, name, str(path)))
    return out


def _pids(proc: str) -> list[int]:
    return sorted((int(d) for d in os.listdir(proc) if d.isdigit()), reverse=True)


def _socket_inodes(fd_dir: str) -> list[int]:
    """Inodes of the sockets among a process's file descriptors (empty when it is gone or
    not readable)."""
    try:
        dfd = os.open(fd_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return []
    out: list[int] = []
    try:
        for fd in os.listdir(dfd):
            try:
                target = os.readlink(fd, dir_fd=dfd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith(_SOCKET_LINK):
                out.append(int(target[len(_SOCKET_LINK):-1]))
    except OSError:  # the process exited
        return out
    finally:
        os.close(dfd)
    return out


def _comm(proc: str, pid: int) -> str | None:
    try:
        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


def find_owners(wanted: Collection[int], proc: str = "/proc") -> dict[int, Owner]:
    """The owner of each inode of ``wanted`` that some process holds (see the module doc:
    highest pid first, stops once all are found). Processes that vanish or cannot be
    read are skipped."""
    left = set(wanted)
    found: dict[int, Owner] = {}
    if not left:
        return found
    for pid in _pids(proc):
        hits = [i for i in _socket_inodes(f"{proc}/{pid}/fd") if i in left]
        if not hits:
            continue
        comm = _comm(proc, pid)
        if comm is None:
            continue  # exited between the two reads
        for inode in hits:
            found[inode] = Owner(pid, comm)
            left.discard(inode)
        if not left:
            break
    return found
