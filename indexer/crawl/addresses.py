"""Which network addresses the crawler may reach, and name lookups that cannot hang.

Two checks keep the crawler off the local network (unless ``allow_private``):

* before a request, every address the host name resolves to must be public (``public_addresses``);
* after the socket connects, the peer it actually reached must be public (``check_peer``). A name
  server may answer "public" to the check and "127.0.0.1" a moment later to the connection (DNS
  rebinding); the peer check closes that gap.

``socket.getaddrinfo`` has no timeout and can block for minutes, so every lookup runs in a daemon
thread and is abandoned after a timeout (``resolve``; ``DNSLookupTimeout``).

``lookup`` is what the pre-request check asks; the connection asks ``system_lookup`` again, as a real
connection would. Tests replace ``lookup`` (and ``is_blocked_ip``) to play a hostile name server.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable

__all__ = [
    "PrivateAddressError", "DNSLookupTimeout", "is_blocked_ip", "lookup", "system_lookup", "resolve",
    "public_addresses", "check_peer",
]

Lookup = Callable[[str, int], list[str]]


class PrivateAddressError(Exception):
    """Raised (deliberately not an OSError, so urllib3/requests don't wrap or
    retry it) when a connection would reach a non-public address."""


class DNSLookupTimeout(Exception):
    """A name lookup gave no answer in time (not an OSError, for the same reason)."""


def is_blocked_ip(address: str) -> bool:
    """True if the address is not a plain public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and is_blocked_ip(str(embedded)):
            return True
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def system_lookup(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to, from the system resolver (blocking, no timeout)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


lookup: Lookup = system_lookup  # the pre-request check's resolver; tests swap in a fake name server


def resolve(host: str, port: int, timeout: float, resolver: Lookup | None = None) -> list[str]:
    """``resolver(host, port)`` (default: ``lookup``), abandoned after ``timeout`` seconds.

    The lookup runs in a daemon thread: a hung resolver costs one idle thread until it returns, never
    the crawl. Raises ``DNSLookupTimeout``, or whatever the resolver raised (``socket.gaierror``).
    """
    fn = resolver if resolver is not None else lookup
    outcome: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["addresses"] = fn(host, port)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"dns-lookup {host[:60]}", daemon=True).start()
    if not done.wait(max(0.001, timeout)):
        raise DNSLookupTimeout(f"{host}: no answer within {timeout:.1f} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return list(outcome["addresses"])  # type: ignore[call-overload]


def public_addresses(host: str, port: int, timeout: float) -> list[str]:
    """The host's addresses if every one is public; PrivateAddressError otherwise."""
    addresses = resolve(host, port, timeout)
    blocked = [a for a in addresses if is_blocked_ip(a)]
    if blocked or not addresses:
        raise PrivateAddressError(f"{host} -> {', '.join(blocked) or 'no address'}")
    return addresses


def check_peer(sock: socket.socket) -> None:
    """Close ``sock`` and raise PrivateAddressError unless it is connected to a public address."""
    try:
        peer = sock.getpeername()[0]
    except OSError as exc:  # pragma: no cover - extremely unusual
        sock.close()
        raise PrivateAddressError(f"cannot determine peer address: {exc}") from exc
    if is_blocked_ip(peer):
        sock.close()
        raise PrivateAddressError(f"connected peer {peer} is not a public address")
