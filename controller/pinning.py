"""Node-name pinning: a node name may register only from the host the config names.

``[controller] pin_nodes = { node1 = "10.0.0.11", node2 = "gpu02.lab" }`` pins
names to hosts (addresses, or names resolved once at controller start). An agent
holding the cluster key still cannot register as ``node1`` from anywhere else;
the controller refuses it with PERMISSION_DENIED and logs it. An admin consents
to a move with ``gctl update nodename=node1 allowhost=10.0.0.99`` (``allowhost=-``
withdraws it); consent is kept in memory until the controller restarts, so a
lasting move belongs in the config. Unpinned names are only protected by "already
connected from another host" (controller/service.py).
"""

from __future__ import annotations

import ipaddress
import logging
import socket

__all__ = ["NodePins", "peer_host"]

logger = logging.getLogger(__name__)


def peer_host(peer: str) -> str:
    """'ipv4:127.0.0.1:5000' -> '127.0.0.1'; 'ipv6:[::1]:5000' -> '::1'."""
    rest = peer.split(":", 1)[1] if peer.startswith(("ipv4:", "ipv6:")) else peer
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return host.strip("[]").replace("%5B", "").replace("%5D", "")


def _addresses(host: str) -> set[str]:
    try:
        return {str(ipaddress.ip_address(host))}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        logger.warning("pin_nodes: cannot resolve %s (%s); nodes pinned to it cannot register",
                       host, exc)
        return set()
    return {str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos}


class NodePins:
    """Pinned node names and admin consents (one per controller)."""

    def __init__(self, pins: tuple[tuple[str, str], ...] = ()) -> None:
        self.pins = dict(pins)
        self._resolved = {name: _addresses(host) for name, host in self.pins.items()}
        self.consent: dict[str, tuple[str, set[str]]] = {}

    def check(self, name: str, peer: str) -> str:
        """'' when ``name`` may register from ``peer`` (a gRPC peer string); else why not."""
        allowed = self._resolved.get(name)
        if allowed is None:
            return ""
        try:
            addr = str(ipaddress.ip_address(peer_host(peer)))
        except ValueError:
            addr = peer_host(peer)
        consent = self.consent.get(name)
        if addr in allowed or (consent is not None and addr in consent[1]):
            return ""
        return (f"node {name} is pinned to {self.pins[name]} by the configuration; "
                f"{addr} needs an admin's consent (gctl update nodename={name} allowhost={addr})")

    def allow(self, name: str, host: str) -> None:
        """Admin consent for ``name`` to register from ``host`` ("-": withdraw)."""
        if host == "-":
            self.consent.pop(name, None)
            return
        addrs = _addresses(host)
        if not addrs:
            raise ValueError(f"cannot resolve {host}")
        self.consent[name] = (host, addrs)
