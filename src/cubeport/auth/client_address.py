"""Which address a request comes from: the socket's peer, or behind trusted reverse proxies the address they
name in a configured header (`auth.trusted_proxy_header`). The throttle and the audit log key on it.

Each proxy appends the address it received the request from, so only the last `hops` entries are written
by trusted proxies; anything left of them was sent by the client and is never believed. Without the
setting the header is ignored: a client could put any address there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence


def client_address(peer: str | None, forwarded: Sequence[str], *, hops: int = 1) -> str | None:
    """The client's address from the socket `peer` and the trusted header's values (`forwarded`, empty when
    no header is trusted); the peer when the header does not hold `hops` valid entries."""
    entries = [e.strip() for value in forwarded for e in value.split(",")]
    if len(entries) < hops:
        return peer
    try:
        return str(ipaddress.ip_address(entries[-hops]))
    except ValueError:  # not an address (a port, a name, garbage): not the proxies' doing, so not believed
        return peer
