"""Who is asking: a request's client address, for limits kept per address.

It is the TCP peer — unless that peer is one of our own reverse proxies (``BILLI_TRUSTED_PROXIES``); then it is
the address the nearest proxy saw, read from the right of ``X-Forwarded-For``. A header from anyone else is
never believed: a client could write any address there.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    """Finds a request's client address, given the proxies we trust."""

    def __init__(self, trusted_proxies: str) -> None:
        """``trusted_proxies``: comma-separated addresses or networks (``10.0.0.0/8, 127.0.0.1``); empty: none."""
        self._trusted: list[IPNetwork] = []
        for entry in filter(None, (e.strip() for e in trusted_proxies.split(","))):
            try:
                self._trusted.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"BILLI_TRUSTED_PROXIES: {entry!r} is not an address or network") from None

    def of(self, request: web.Request) -> str:
        """The client's address (``unknown`` when the peer has none, e.g. a Unix socket).

        Behind trusted proxies, ``X-Forwarded-For`` is read from the right: each of our proxies appends the
        address it got the request from, so the first entry that is not one of ours is the client; what lies to
        the left of it was written by the client and is ignored. An entry that is not an address stops the walk
        at the last proxy that vouched for it."""
        peer = _ip(request.remote)
        if peer is None:
            return "unknown"
        client = peer
        if self._is_trusted(client):
            hops = [hop for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")]
            for hop in reversed(hops):
                address = _ip(hop)
                if address is None:
                    break
                client = address
                if not self._is_trusted(address):
                    break
        return str(client)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)


def _ip(text: str | None) -> IPAddress | None:
    """``text`` as an address (an IPv4-mapped IPv6 address as its IPv4 one), or None if it is not one."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
