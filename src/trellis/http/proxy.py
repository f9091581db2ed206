"""Client address, scheme and host from ``X-Forwarded-*``, believed only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from trellis.datastructures import Headers
from trellis.types import Scope

__all__ = ["TrustedProxies"]


class TrustedProxies:
    """Which peers may speak for the client through ``X-Forwarded-For/Proto/Host``.

    Args:
        proxies: IP addresses or CIDR networks; ``"*"`` trusts every peer.
    """

    __slots__ = ("_all", "_nets")

    def __init__(self, proxies: Iterable[str]) -> None:
        items = list(proxies)
        self._all = "*" in items
        self._nets = [ipaddress.ip_network(p, strict=False) for p in items if p != "*"]

    def trusts(self, host: str | None) -> bool:
        """Whether ``host`` (a peer address) is a trusted proxy."""
        if self._all:
            return True
        if not host:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            # A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d.
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._nets)

    def _peer_trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        return self.trusts(client[0] if client else None)

    def client(self, scope: Scope, headers: Headers) -> tuple[str, int] | None:
        """The real client: the right-most ``X-Forwarded-For`` address not a trusted proxy."""
        client = scope.get("client")
        peer = (client[0], client[1]) if client else None
        if not self._peer_trusted(scope):
            return peer
        forwarded = ",".join(headers.getlist("x-forwarded-for"))
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        # Walk from the nearest hop outwards; the first address we do not trust is the client.
        for hop in reversed(hops):
            if not self.trusts(hop):
                return (hop, 0)
        return (hops[0], 0) if hops else peer

    def scheme(self, scope: Scope, headers: Headers) -> str:
        """``X-Forwarded-Proto`` from a trusted proxy, else the connection's scheme."""
        scheme = str(scope.get("scheme", "http"))
        if self._peer_trusted(scope):
            proto = headers.get("x-forwarded-proto")
            if proto:
                value = proto.split(",")[0].strip().lower()
                if value in ("http", "https", "ws", "wss"):
                    if scope.get("type") == "websocket":
                        value = {"http": "ws", "https": "wss"}.get(value, value)
                    return str(value)
        return scheme

    def host(self, scope: Scope, headers: Headers) -> str:
        """``X-Forwarded-Host`` from a trusted proxy, else the ``Host`` header."""
        if self._peer_trusted(scope):
            fwd = headers.get("x-forwarded-host")
            if fwd:
                return str(fwd.split(",")[0].strip())
        host: str = headers.get("host") or "localhost"
        return host
