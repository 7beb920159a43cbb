"""The simulated TENIOS record-call API: its state, its rules and its Starlette app.

It follows ``TENIOS-RECORDING-API.md`` to the letter where the API is documented,
and makes a stated choice where it is not:

- ``POST /record-call/start|stop|retrieve`` with a JSON object body; the access
  key is the body's ``access_key``.  Anything else (other paths, other methods,
  a trailing slash) is 404, as TENIOS documents for unknown endpoints.
- Bad JSON → 400; wrong/missing key → 403 ``BAD_CREDENTIALS``; a missing,
  mistyped or malformed field → 400 ``INVALID_VALUE`` naming all bad ``fields``.
  ``record_caller`` / ``record_callee`` accept ``true``/``false`` and ``"true"``/``"false"``.
- start → ``{"recording_uuid": ...}``: caller and callee both recorded give
  stereo audio, one of them mono (both false is a 400).
- stop → ``{"success": "true"}`` (a string); stopping twice is fine.  Undocumented
  choices: an unknown recording is 404; a ``call_uuid`` that does not match the
  recording's call is 400 ``fields: ["call_uuid"]``.
- retrieve → the WAV as ``application/octet-stream; charset=UTF-8`` with
  Content-Length, once the recording was stopped and ``not_ready`` seconds have
  passed; before that, and for unknown recordings, 404.
- Faults (:mod:`tenios_io.simulator.faults`) are decided per request before the
  request is looked at: a status fault means nothing happened; ``truncate`` and
  ``reset`` break the answer of a request that *was* carried out (a ``start``
  whose answer is lost still created its recording, as in real life).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeGuard

import anyio
import anyio.lowlevel
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tenios_io.simulator.catalogue import AudioSpec, Catalogue, Recording
from tenios_io.simulator.connections import ConnectionTracker
from tenios_io.simulator.delivery import DropFolder
from tenios_io.simulator.faults import Fault, FaultInjector, FaultPlan, check_token

logger = logging.getLogger("tenios_io.simulator")

DEFAULT_ACCESS_KEY = "simulator-access-key"
RETRIEVE_CONTENT_TYPE = "application/octet-stream; charset=UTF-8"
ENDPOINTS = ("start", "stop", "retrieve")
EXPECTED_BYTES_LIMIT = 64 * 1024 * 1024
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_ERRORS = {
    400: ("INVALID_VALUE", "Invalid parameter type or format"),
    403: ("BAD_CREDENTIALS", "Bad credentials"),
    404: ("NOT_FOUND", "Not found"),
    429: ("TOO_MANY_REQUESTS", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
}


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (for assertions in tests)."""

    endpoint: str
    recording_uuid: str | None
    status: int
    fault: str
    """The fault token applied: ``ok``, ``503``, ``truncate``, ``reset``, ``slow`` ..."""


class Simulator:
    """A faithful TENIOS record-call API with fault injection and SFTP-folder delivery.

    ``simulator.app`` is the ASGI app; run it with
    :func:`tenios_io.simulator.server.running_simulator` (tests, demo) or
    ``tenios-archive simulator serve``.  Everything is deterministic from
    ``seed``: recording uuids, lengths, audio bytes and the chance of each fault.

    Args:
        access_key: the key requests must carry (not a real secret; never logged).
        seed: seeds the uuids, the audio and the fault dice.
        faults: what goes wrong, for the whole run (default: nothing).
        drop_dir: when set, every finished recording is also written there.
        drop_name_pattern: file name in ``drop_dir``; placeholders ``{recording_uuid}``,
            ``{call_uuid}``, ``{date:%Y%m%d}`` (UTC stop time), ``{channels}``.
        recording_seconds: (min, max) length of recordings made through ``start``.
        clock: seconds since the epoch; tests pass a fake one to move time on.
    """

    def __init__(
        self,
        *,
        access_key: str = DEFAULT_ACCESS_KEY,
        seed: int = 0,
        faults: FaultPlan | None = None,
        drop_dir: str | Path | None = None,
        drop_name_pattern: str = "{recording_uuid}.wav",
        recording_seconds: tuple[float, float] = (5.0, 90.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not access_key:
            raise ValueError("access_key must not be empty")
        low, high = recording_seconds
        if not 0 < low <= high:
            raise ValueError("recording_seconds must be (min, max) with 0 < min <= max")
        self.access_key = access_key
        self.plan = faults if faults is not None else FaultPlan()
        self.drop = DropFolder(drop_dir, drop_name_pattern) if drop_dir is not None else None
        self.catalogue = Catalogue()
        self.connections = ConnectionTracker()
        self.recording_seconds = (low, high)
        self._clock = clock
        self._faults = FaultInjector(self.plan, seed)
        self._ids = random.Random(f"ids:{seed}")
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._delivered: dict[str, Path] = {}
        self._handled = 0
        self._revoked = False
        self._open = threading.Event()
        self._open.set()
        self.app: Starlette = _build_app(self)

    def __repr__(self) -> str:
        return f"Simulator(recordings={len(self.catalogue)}, faults={self.plan.to_spec()!r})"

    # -- recordings ------------------------------------------------------------------------

    def add_recording(
        self,
        recording_uuid: str | None = None,
        call_uuid: str | None = None,
        *,
        seconds: float = 30.0,
        channels: int = 1,
        ready: bool = True,
        not_ready: float = 0.0,
        faults: Sequence[str] = (),
    ) -> str:
        """Add a recording and return its uuid (random from the seed when not given).

        ``ready=True``: the recording was stopped now and is delivered to the drop
        folder; retrieve serves it after ``not_ready`` seconds.  ``ready=False``: it is
        still being recorded until ``stop`` (API or :meth:`stop_recording`).
        ``faults`` is this recording's own schedule of fault tokens, consumed by the
        requests naming it (stop, retrieve) before the run-wide plan is asked.
        """
        for name, value in (("recording_uuid", recording_uuid), ("call_uuid", call_uuid)):
            if value is not None and not _is_uuid(value):
                raise ValueError(f"{name} {value!r} is not a UUID")
        with self._lock:
            rec_uuid = (recording_uuid or self._new_uuid()).lower()
            call = (call_uuid or self._new_uuid()).lower()
            audio = AudioSpec(seed=self._ids.getrandbits(63), seconds=seconds, channels=channels)
        recording = Recording(
            recording_uuid=rec_uuid,
            call_uuid=call,
            audio=audio,
            started_at=self._clock(),
            faults=deque(check_token(t) for t in faults),
        )
        self.catalogue.add(recording)
        if ready:
            self._finish(recording, not_ready=not_ready)
            self._deliver(recording)
        return rec_uuid

    def seed(
        self,
        n: int,
        *,
        seconds: float | None = None,
        channels: int = 1,
        ready: bool = True,
    ) -> list[str]:
        """Add ``n`` recordings (lengths random within ``recording_seconds`` unless given)."""
        uuids = []
        for _ in range(n):
            with self._lock:
                length = seconds if seconds is not None else self._random_seconds()
            uuids.append(self.add_recording(seconds=length, channels=channels, ready=ready))
        return uuids

    def stop_recording(self, recording_uuid: str) -> None:
        """Stop a recording from Python, as ``POST /record-call/stop`` would."""
        recording = self.recording(recording_uuid)
        if self._finish(recording, not_ready=self.plan.not_ready):
            self._deliver(recording)

    def recording(self, recording_uuid: str) -> Recording:
        """The recording, or KeyError."""
        recording = self.catalogue.get(recording_uuid)
        if recording is None:
            raise KeyError(recording_uuid)
        return recording

    def revoke_access_key(self) -> None:
        """From now on every request is refused: 403 ``BAD_CREDENTIALS`` (a revoked key)."""
        self._revoked = True

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """While inside, every request waits before it is answered (a gate tests
        use to keep a run in flight until they have seen what they wait for)."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def schedule_faults(self, *tokens: str) -> None:
        """Append fault tokens to the run-wide schedule (consumed one per request)."""
        self._faults.extend_schedule(tokens)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def delivered_path(self, recording_uuid: str) -> Path | None:
        """Where the recording was delivered in the drop folder, if it was."""
        with self._lock:
            return self._delivered.get(recording_uuid.lower())

    # -- what a client should receive -----------------------------------------------------

    def expected_size(self, recording_uuid: str) -> int:
        return self.recording(recording_uuid).audio.size

    def expected_sha256(self, recording_uuid: str) -> str:
        """SHA-256 (hex) of the bytes retrieve serves, computed from the stream."""
        return self.recording(recording_uuid).audio.sha256()

    def expected_bytes(self, recording_uuid: str) -> bytes:
        """The bytes retrieve serves; only for recordings up to 64 MiB (use the SHA-256)."""
        audio = self.recording(recording_uuid).audio
        if audio.size > EXPECTED_BYTES_LIMIT:
            raise ValueError(
                f"recording {recording_uuid} has {audio.size} bytes: use expected_sha256()"
            )
        return audio.read_all()

    # -- internals -------------------------------------------------------------------------

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _random_seconds(self) -> float:
        low, high = self.recording_seconds
        return round(self._ids.uniform(low, high), 3)

    def _finish(self, recording: Recording, *, not_ready: float) -> bool:
        """Mark stopped; True if it was still running (only then is it delivered)."""
        with self._lock:
            if recording.stopped_at is not None:
                return False
            now = self._clock()
            recording.stopped_at = now
            recording.ready_at = now + not_ready
            return True

    def _deliver(self, recording: Recording) -> None:
        if self.drop is None:
            return
        path = self.drop.deliver(recording)
        with self._lock:
            self._delivered[recording.recording_uuid] = path

    def _record(self, endpoint: str, recording_uuid: str | None, status: int, fault: str) -> None:
        with self._lock:
            self._requests.append(RequestRecord(endpoint, recording_uuid, status, fault))
        logger.info("%s %s -> %d (%s)", endpoint, recording_uuid or "-", status, fault)

    # -- the API ---------------------------------------------------------------------------

    async def handle(self, endpoint: str, request: Request) -> Response:
        """Answer one API request (faults first, then the documented behaviour)."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError
            body = None
        named = body.get("recording_uuid") if isinstance(body, dict) else None
        recording_uuid = named.lower() if _is_uuid(named) else None

        own = None
        if recording_uuid is not None and endpoint != "start":
            own = self.catalogue.next_fault(recording_uuid)
        fault = self._faults.next(own)
        if not self._open.is_set():
            await anyio.to_thread.run_sync(self._open.wait)
        if fault.delay:
            await anyio.sleep(fault.delay)

        with self._lock:
            number = self._handled
            self._handled += 1
        revoked = self._revoked or (
            self.plan.revoked_after is not None and number >= self.plan.revoked_after
        )
        if fault.kind == "status":
            answer = self._error(fault.status)
        elif fault.kind == "redirect":
            location = str(request.url.replace(scheme="https"))
            answer = _Answer(308, {"location": location, "content-length": "0"}, [], 0)
        elif revoked:
            answer = self._error(403)
        elif not isinstance(body, dict):
            answer = self._error(400, fields=[], message="Invalid JSON body")
        elif not _same_key(body.get("access_key"), self.access_key):
            answer = self._error(403)
        elif endpoint == "start":
            answer = self._start(body)
        elif endpoint == "stop":
            answer = await self._stop(body)
        else:
            answer = self._retrieve(body)
            if fault.kind == "body" and answer.status == 200:
                answer = _wrong_body(answer, fault.name, self.recording(str(recording_uuid)))
        self._record(endpoint, recording_uuid, answer.status, fault.name)
        return _AnswerResponse(answer, fault, self.connections)

    def _start(self, body: dict[str, Any]) -> _Answer:
        fields = []
        call_uuid = body.get("call_uuid")
        if not _is_uuid(call_uuid):
            fields.append("call_uuid")
        caller = _flag(body, "record_caller")
        callee = _flag(body, "record_callee")
        fields += [
            name for name, v in (("record_caller", caller), ("record_callee", callee)) if v is None
        ]
        if fields:
            return self._error(400, fields=fields)
        if not (caller or callee):
            return self._error(400, fields=["record_caller", "record_callee"])
        with self._lock:
            seconds = self._random_seconds()
        recording_uuid = self.add_recording(
            call_uuid=call_uuid,
            seconds=seconds,
            channels=2 if caller and callee else 1,
            ready=False,
        )
        return _Answer.json(200, {"recording_uuid": recording_uuid})

    async def _stop(self, body: dict[str, Any]) -> _Answer:
        fields = []
        recording_uuid = body.get("recording_uuid")
        call_uuid = body.get("call_uuid")
        if not _is_uuid(recording_uuid):
            fields.append("recording_uuid")
        if "call_uuid" in body and not _is_uuid(call_uuid):
            fields.append("call_uuid")
        if fields:
            return self._error(400, fields=fields)
        recording = self.catalogue.get(str(recording_uuid))
        if recording is None:
            return self._error(404, message="Recording not found")
        if call_uuid is not None and str(call_uuid).lower() != recording.call_uuid:
            return self._error(400, fields=["call_uuid"])
        if self._finish(recording, not_ready=self.plan.not_ready):
            await run_in_threadpool(self._deliver, recording)
        return _Answer.json(200, {"success": "true"})

    def _retrieve(self, body: dict[str, Any]) -> _Answer:
        recording_uuid = body.get("recording_uuid")
        if not _is_uuid(recording_uuid):
            return self._error(400, fields=["recording_uuid"])
        recording = self.catalogue.get(recording_uuid)
        if recording is None or not recording.is_ready(self._clock()):
            return self._error(404, message="Recording not found")
        audio = recording.audio
        headers = {"content-type": RETRIEVE_CONTENT_TYPE, "content-length": str(audio.size)}
        return _Answer(200, headers, audio.chunks(), audio.size)

    def _error(
        self, status: int, *, fields: Sequence[str] = (), message: str | None = None
    ) -> _Answer:
        code, default_message = _ERRORS.get(status, ("ERROR", HTTPStatus(status).phrase))
        answer = _Answer.json(
            status,
            {
                "error_code": code,
                "error_message": message or default_message,
                "fields": list(fields),
            },
        )
        if status in (429, 503) and self.plan.retry_after is not None:
            answer.headers["retry-after"] = str(self.plan.retry_after)
        return answer


@dataclass
class _Answer:
    """An HTTP answer before it is sent (and perhaps broken on purpose)."""

    status: int
    headers: dict[str, str]
    chunks: Iterable[bytes]
    size: int
    close_delimited: bool = False
    """Sent raw on the socket without Content-Length, the end marked by closing it
    (the ASGI server would frame it as chunked for an HTTP/1.1 client)."""

    @classmethod
    def json(cls, status: int, payload: dict[str, Any]) -> _Answer:
        data = json.dumps(payload).encode()
        headers = {"content-type": "application/json", "content-length": str(len(data))}
        return cls(status, headers, [data], len(data))


_HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1></body></html>\n"
)


def _wrong_body(answer: _Answer, fault: str, recording: Recording) -> _Answer:
    """A retrieve's 200 answer made wrong in a way its status does not tell."""
    if fault == "json200":
        return _Answer.json(
            200, {"error_code": "INTERNAL_ERROR", "error_message": "Recording unavailable"}
        )
    if fault == "html200":
        headers = {"content-type": "text/html", "content-length": str(len(_HTML_ERROR))}
        return _Answer(200, headers, [_HTML_ERROR], len(_HTML_ERROR))
    audio = recording.audio
    if fault == "shortwav":
        half = audio.size // 2
        headers = {"content-type": RETRIEVE_CONTENT_TYPE, "content-length": str(half)}
        return _Answer(200, headers, _first_bytes(audio.chunks(), half), half)
    # close / cut: no Content-Length; the server closes the connection to end the body.
    headers = {"content-type": RETRIEVE_CONTENT_TYPE, "connection": "close"}
    size = audio.size if fault == "close" else audio.size // 2
    return _Answer(200, headers, _first_bytes(audio.chunks(), size), size, close_delimited=True)


def _first_bytes(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        if sent + len(chunk) >= limit:
            yield chunk[: limit - sent]
            return
        yield chunk
        sent += len(chunk)


class _BrokenOnPurpose(Exception):
    """Raised to make a server without a ConnectionTracker drop the connection."""


class _AnswerResponse(Response):
    """Streams an :class:`_Answer`, and breaks it for the truncate and reset faults."""

    def __init__(self, answer: _Answer, fault: Fault, connections: ConnectionTracker) -> None:
        super().__init__(status_code=answer.status, headers=answer.headers)
        self._chunks = answer.chunks
        self._break_after: int | None = None
        self._reset = fault.kind == "reset"
        if fault.kind == "truncate":
            self._break_after = answer.size // 2
        elif fault.kind == "reset":
            self._break_after = answer.size // 4
        self._connections = connections
        self._close_delimited = answer.close_delimited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._close_delimited:
            await self._send_close_delimited(scope, receive)
            return
        broken = False
        async with anyio.create_task_group() as group:

            async def until_disconnect() -> None:
                # Also ends the response early when the client goes away mid-stream.
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(until_disconnect)
            await self._send(send)
            if self._break_after is not None:
                if self._connections.close(scope.get("client"), reset=self._reset):
                    await anyio.sleep_forever()  # until_disconnect ends it, once the server knows
                else:  # no handle on this connection: an error makes the server drop it
                    broken = True
                    group.cancel_scope.cancel()
        if broken:
            raise _BrokenOnPurpose("connection broken on purpose (fault injection)")

    async def _send_close_delimited(self, scope: Scope, receive: Receive) -> None:
        """Write status line, headers and body straight to the socket, then close it."""
        transport = self._connections.transport(scope.get("client"))
        if transport is None:
            raise _BrokenOnPurpose("close-delimited answers need the tracking server")
        head = [f"HTTP/1.1 {self.status_code} {HTTPStatus(self.status_code).phrase}"]
        head += [
            f"{k.decode()}: {v.decode()}"
            for k, v in self.raw_headers
            if k.lower() != b"content-length"  # Starlette adds one for the empty body
        ]
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for chunk in self._chunks:
            transport.write(chunk)
            await anyio.lowlevel.checkpoint()
        self._connections.close(scope.get("client"), reset=False)
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _send(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        limit, sent = self._break_after, 0
        for chunk in self._chunks:
            if limit is not None and sent + len(chunk) >= limit:
                if limit > sent:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": chunk[: limit - sent],
                            "more_body": True,
                        }
                    )
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
            await anyio.lowlevel.checkpoint()  # let other connections in between chunks
        if limit is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _build_app(sim: Simulator) -> Starlette:
    def endpoint(name: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            return await sim.handle(name, request)

        handle.__name__ = f"record_call_{name}"
        return handle

    async def not_found(request: Request, exc: Exception) -> Response:
        # TENIOS: 404 for an unknown method or endpoint (so 405 becomes 404 as well).
        body = {"error_code": "NOT_FOUND", "error_message": "Unknown endpoint", "fields": []}
        return Response(json.dumps(body), status_code=404, media_type="application/json")

    routes = [Route(f"/record-call/{name}", endpoint(name), methods=["POST"]) for name in ENDPOINTS]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.router.redirect_slashes = False
    return app


def _is_uuid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _UUID_RE.fullmatch(value) is not None


def _same_key(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def _flag(body: dict[str, Any], name: str) -> bool | None:
    """A documented boolean: true/false or "true"/"false"; absent = true; else None (invalid)."""
    value = body.get(name, True)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


__all__ = ["DEFAULT_ACCESS_KEY", "RETRIEVE_CONTENT_TYPE", "RequestRecord", "Simulator"]
