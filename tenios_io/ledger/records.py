"""What the ledger hands out and takes in: plain records, no SQL."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from tenios_io.ledger.states import State

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to naive datetimes read back from SQLite."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def default_actor() -> str:
    """``user@host:pid`` — who did it, when no flow run id is known."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class NewRecording:
    """A recording to register."""

    recording_uuid: str
    call_uuid: str | None = None
    recorded_at: datetime | None = None
    source_path: str | None = None
    """Where the SFTP drop holds it, when it was found there."""
    producer: str | None = None
    """Who handed it over through the intake (named in the ``registered`` event)."""


@dataclass(frozen=True)
class RegisterResult:
    """What register did: ``added`` are new rows; ``known`` changed nothing."""

    added: list[str]
    known: list[str]
    source_found: list[str]
    """Known rows that learnt their SFTP path in this call."""


@dataclass(frozen=True)
class ImportResult:
    """What a streamed import did, as counts (an import of millions keeps no id lists).

    ``read`` = ``added + known + duplicates``.
    """

    read: int
    added: int
    known: int
    duplicates: int
    """Lines naming a recording_uuid an earlier line of the same input named."""
    source_found: int
    stopped_after: int | None = None
    """Set when a stop request ended the import early (a signal): how many lines of
    the input were merged, in whole committed chunks (0: stopped while the input was
    still being read and checked, nothing imported).  ``added`` counts what those
    chunks added; ``known`` and ``duplicates`` are then 0 (not counted)."""

    @property
    def stopped(self) -> bool:
        return self.stopped_after is not None


@dataclass(frozen=True)
class Recording:
    """One row of ``recordings``."""

    recording_uuid: str
    call_uuid: str | None
    source_hint: str
    source_path: str | None
    state: State
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    lease_token: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    discovered_at: datetime
    recorded_at: datetime | None
    source: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    s3_bucket: str | None
    s3_key: str | None
    s3_version_id: str | None
    retention_mode: str | None
    retain_until: datetime | None
    legal_hold: bool
    fetched_at: datetime | None
    archived_at: datetime | None
    last_verified_at: datetime | None
    updated_at: datetime
    lease_expiries: int = 0
    """How many times a worker died holding this recording's lease."""
    codec: str | None = None
    channels: int | None = None
    sample_rate: int | None = None
    duration_seconds: float | None = None
    """Audio facts from the container, checked before upload (tenios_io/recording/validation.py)."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Recording:
        # The field names once per class (dataclasses.fields builds a tuple per call), and
        # the row's keys once per row (a RowMapping's `in` is Python code per lookup).
        present = row.keys()
        values = {name: row[name] for name in _FIELD_NAMES if name in present}
        for key, value in values.items():
            if isinstance(value, datetime):
                values[key] = as_utc(value)
        values["state"] = State(values["state"])
        values["legal_hold"] = bool(values["legal_hold"])
        return cls(**values)

    @property
    def key_date(self) -> datetime:
        """The fixed date the S3 key is built from: recorded_at, else discovered_at."""
        return self.recorded_at or self.discovered_at


_FIELD_NAMES = tuple(f.name for f in fields(Recording))


#: Names this process in the claims it makes: a claim's age (``Claim.claimed_at``, a
#: monotonic clock) means something only in the process that made it.
THIS_PROCESS = uuid.uuid4().hex


@dataclass(frozen=True)
class Claim:
    """A recording leased to one worker; ``lease_token`` fences everything it writes."""

    recording: Recording
    lease_token: str
    claimed_at: float | None = field(default=None, compare=False)
    """``time.monotonic()`` when ``claimed_in`` made the claim (None: not known)."""
    claimed_in: str | None = field(default=None, compare=False)
    """The process that made the claim (:data:`THIS_PROCESS` there)."""

    @property
    def recording_uuid(self) -> str:
        return self.recording.recording_uuid
