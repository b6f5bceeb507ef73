"""Which TCP ports a group of processes listens on, and which of those are not loopback-only.

Used by the tests that pin "Ray binds to 127.0.0.1 only" (embedded sessions and `cluster up`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Listener:
    process: str  # process name, e.g. gcs_server, raylet, ray::DashboardAgent
    pid: int
    ip: str  # as the kernel reports it: 0.0.0.0, ::, ::ffff:127.0.0.1, 127.0.0.1 ...
    port: int

    @property
    def loopback(self) -> bool:
        address = ipaddress.ip_address(self.ip.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback


def with_descendants(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    found = {}
    for proc in processes:
        found[proc.pid] = proc
        try:
            found.update({child.pid: child for child in proc.children(recursive=True)})
        except psutil.Error:
            continue
    return list(found.values())


def listeners(processes: Iterable[psutil.Process]) -> list[Listener]:
    """Listening TCP sockets (IPv4 and IPv6) of ``processes``, sorted by process name and port."""
    found = set()
    for proc in processes:
        try:
            name = proc.name()
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add(Listener(name, proc.pid, conn.laddr.ip, conn.laddr.port))
        except psutil.Error:  # exited meanwhile
            continue
    return sorted(found, key=lambda item: (item.process, item.port))
