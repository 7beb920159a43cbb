"""The witness's memory: per log origin, the latest checkpoint it cosigned.

One small JSON file per origin in the state folder, named by the SHA-256 of the
origin (an origin is the log's text and may hold any character), replaced whole:
written under a temporary name, fsynced, renamed over the old one and the folder
fsynced, so a crash leaves the old state or the new one, never half of either.

A request reads the state, checks the new checkpoint against it and writes it back
as one step (:meth:`WitnessState.locked`): a lock per origin within the process and
an ``flock`` on the origin's lock file across processes, so two requests for one
log never both pass against the same old size (the race C2SP tlog-witness warns of).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_MAX_STATE_BYTES = 64 * 1024


class StateError(Exception):
    """The state folder holds something that is not this witness's state."""


@dataclass(frozen=True)
class LogState:
    """The latest checkpoint the witness cosigned for one origin."""

    origin: str
    size: int
    root: bytes
    log_key: str
    """The verifier key of the log key that signed it (the origin is bound to that key)."""


def durable_write(path: Path, body: bytes) -> None:
    """Replace ``path`` with ``body`` so that a crash leaves the old or the new file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class WitnessState:
    """The state folder: one file per origin, changed only under :meth:`locked`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _path(self, origin: str, suffix: str) -> Path:
        return self.folder / f"{hashlib.sha256(origin.encode()).hexdigest()}{suffix}"

    def load(self, origin: str) -> LogState | None:
        """The state of ``origin`` (None if the witness never cosigned one of its checkpoints)."""
        path = self._path(origin, ".json")
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw)
            state = LogState(
                str(doc["origin"]),
                int(doc["size"]),
                base64.b64decode(doc["root"], validate=True),
                str(doc["log_key"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{path} is not a witness state file ({exc})") from None
        if state.origin != origin or len(raw) > _MAX_STATE_BYTES:
            raise StateError(f"{path} is not the state of origin {origin!r}")
        return state

    def save(self, state: LogState) -> None:
        body = {
            "origin": state.origin,
            "size": state.size,
            "root": base64.b64encode(state.root).decode(),
            "log_key": state.log_key,
        }
        durable_write(self._path(state.origin, ".json"), json.dumps(body).encode() + b"\n")

    def keep_evidence(self, origin: str, request: bytes, reason: str) -> Path:
        """Keep a refused, validly signed request: it may prove the log misbehaved."""
        folder = self.folder / "refused"
        folder.mkdir(exist_ok=True)
        digest = hashlib.sha256(request).hexdigest()[:16]
        path = folder / f"{self._path(origin, '').name[:16]}-{digest}.txt"
        durable_write(path, f"# {reason}\n".encode() + request)
        return path

    @contextmanager
    def locked(self, origin: str) -> Iterator[None]:
        """Hold ``origin``'s lock: within this process and against other processes."""
        with self._guard:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock, self._path(origin, ".lock").open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
