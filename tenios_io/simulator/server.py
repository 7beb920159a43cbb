"""Serving a :class:`~tenios_io.simulator.app.Simulator` over real HTTP with uvicorn.

:func:`running_simulator` runs it in a background thread (tests, the demo) and
returns once it accepts connections; :func:`serve_forever` runs it in the
foreground until Ctrl-C (``tenios-archive simulator serve``).  Both use a
socket bound before uvicorn starts, so ``port=0`` picks a free port with no race.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr

from tenios_io.simulator.app import Simulator
from tenios_io.simulator.connections import ConnectionTracker

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 15.0


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator being served: ``url`` is its base URL (``TENIOS_API_URL``)."""

    sim: Simulator
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def access_key(self) -> str:
        return self.sim.access_key


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (``port=0``: any free port; read it from ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose
    # proto says TCP; without it each answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn that says when it is ready and stops as soon as it is asked to.

    uvicorn's own main loop looks at ``should_exit`` every 0.1 s; this one sleeps
    until :meth:`request_stop` (or a signal) wakes it, ticking once a second for
    uvicorn's housekeeping (the Date header).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        assert self._wake is not None
        while not self.should_exit:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            if await self.on_tick(0):
                self.should_exit = True

    def request_stop(self) -> None:
        """Ask the server to shut down (from any thread)."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop closed in between: it is stopping anyway
                pass

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.request_stop()


def _make_server(sim: Simulator, *, log_level: str = "warning") -> _Server:
    config = uvicorn.Config(
        sim.app,
        http=_tracking_protocol(sim.connections),
        ws="none",
        lifespan="off",
        log_config=None,  # never reconfigure the host program's logging
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return _Server(config)


@contextmanager
def running_simulator(
    sim: Simulator, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"
) -> Iterator[RunningSimulator]:
    """Serve ``sim`` in a background thread for the duration of the ``with`` block.

    Returns once the server accepts connections; stops it (and waits for the
    thread) on exit.  ``port=0`` picks a free port.
    """
    sock = bind_socket(host, port)
    server = _make_server(sim, log_level=log_level)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)
        finally:
            server.ready.set()

    thread = threading.Thread(target=run, name="tenios-simulator", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(STARTUP_TIMEOUT) or failure or not server.started:
            raise RuntimeError("the simulator did not start") from (failure[0] if failure else None)
        bound_host, bound_port = sock.getsockname()[:2]
        _wait_accepting(bound_host, bound_port)
        yield RunningSimulator(sim, bound_host, bound_port)
    finally:
        server.request_stop()
        thread.join(SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT)
        sock.close()


def serve_forever(sim: Simulator, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve ``sim`` on ``sock`` in this thread until SIGINT/SIGTERM."""
    _make_server(sim, log_level=log_level).run(sockets=[sock])


def _wait_accepting(host: str, port: int) -> None:
    # uvicorn says it started; one real connection proves the listener answers.
    with socket.create_connection((host, port), timeout=STARTUP_TIMEOUT):
        pass


def _tracking_protocol(tracker: ConnectionTracker) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, registering each connection so faults can break it."""

    class TrackingH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._peer = get_remote_addr(transport)
            tracker.register(self._peer, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            tracker.unregister(getattr(self, "_peer", None))
            super().connection_lost(exc)

    return TrackingH11Protocol
