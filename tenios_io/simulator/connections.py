"""Reaching the TCP connection behind an ASGI request, to break it on purpose.

ASGI gives an application no handle on its connection, yet the truncate and
reset faults need one: *truncate* flushes what was sent and closes (FIN) before
Content-Length bytes went out; *reset* aborts with SO_LINGER 0, so the peer
sees ECONNRESET.  The server in :mod:`tenios_io.simulator.server` registers
each connection here under its peer address, which is what ASGI puts in
``scope["client"]``.
"""

from __future__ import annotations

import asyncio
import socket
import struct


class ConnectionTracker:
    """Open transports by peer address; only touched from the server's event loop."""

    def __init__(self) -> None:
        self._transports: dict[tuple[str, int], asyncio.Transport] = {}

    def register(self, client: tuple[str, int] | None, transport: asyncio.Transport) -> None:
        if client is not None:
            self._transports[client] = transport

    def unregister(self, client: tuple[str, int] | None) -> None:
        if client is not None:
            self._transports.pop(client, None)

    def transport(self, client: tuple[str, int] | None) -> asyncio.Transport | None:
        """The connection's transport, to write to it directly (None if not known here)."""
        return self._transports.get(client) if client is not None else None

    def close(self, client: tuple[str, int] | None, *, reset: bool) -> bool:
        """Close (flushing first) or reset the connection; False if it is not known here."""
        transport = self._transports.get(client) if client is not None else None
        if transport is None:
            return False
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        return True
