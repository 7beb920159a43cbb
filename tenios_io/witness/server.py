"""The witness over HTTP: ``POST /add-checkpoint`` (C2SP tlog-witness) and nothing else.

The standard library's :class:`~http.server.ThreadingHTTPServer`, on purpose: the
witness is the auditor's trust anchor, run by a compliance team on a small machine,
and its whole API is one POST of a few kilobytes answered in milliseconds.  A thread
per connection is plenty for that, HTTP/1.1 keep-alive comes with it, and it adds no
web framework or ASGI server to what the auditor must trust and keep patched.  What
it lacks is bounded here: the body size (Content-Length required, at most
:data:`~tenios_io.witness.service.MAX_REQUEST_BYTES`) and a socket timeout, so a slow
or oversized client cannot hold a thread or memory.
"""

from __future__ import annotations

import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tenios_io.witness.service import MAX_REQUEST_BYTES, Answer, Witness

log = logging.getLogger("tenios_io.witness")
PATH = "/add-checkpoint"
_TIMEOUT_SECONDS = 30


class WitnessServer(ThreadingHTTPServer):
    """Serves one :class:`Witness`; threads are daemons, the listening socket is given."""

    daemon_threads = True

    def __init__(self, witness: Witness, sock: socket.socket) -> None:
        self.witness = witness
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.server_activate()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the spec asks
    timeout = _TIMEOUT_SECONDS
    server: WitnessServer
    server_version = "tenios-archive-witness"

    def do_POST(self) -> None:
        if self.path != PATH:
            self._answer(Answer.text(404, f"not found: only POST {PATH}"))
            return
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None or not length.isdigit():
            self._answer(Answer.text(411, "a Content-Length is required"), close=True)
            return
        if int(length) > MAX_REQUEST_BYTES:
            self._answer(Answer.text(413, f"request over {MAX_REQUEST_BYTES} bytes"), close=True)
            return
        body = self.rfile.read(int(length))
        try:
            answer = self.server.witness.add_checkpoint(body)
        except Exception:  # answer 500 and keep serving; the log has the traceback
            log.exception("add-checkpoint failed")
            answer = Answer.text(500, "internal error (see the witness's log)")
        self._answer(answer)

    def do_GET(self) -> None:
        self._answer(Answer.text(405, f"use POST {PATH}"))

    def _answer(self, answer: Answer, *, close: bool = False) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)
