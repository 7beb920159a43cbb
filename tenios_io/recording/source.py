"""The seam between "where a recording comes from" and the archiving pipeline.

A source (the TENIOS API, the customer's SFTP drop) writes a recording's bytes
into a :class:`Sink`.  A sink is a writable binary file: the source may call
``seek(0)`` and ``truncate()`` to start over (a retried download must be
byte-exact), which the hashing spool in :mod:`tenios_io.recording.spool` honours by
resetting its digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Sink(Protocol):
    """Where a source writes a recording's bytes."""

    def write(self, data: bytes, /) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def truncate(self, size: int | None = None, /) -> int: ...


@dataclass(frozen=True)
class FetchRequest:
    """What the pipeline knows about a recording when it asks a source for it."""

    recording_uuid: str
    call_uuid: str | None = None
    source_path: str | None = None
    """The SFTP path the ledger recorded for it, if any."""


@dataclass(frozen=True)
class Fetched:
    """What a source delivered into the sink."""

    source: str
    """``"api"`` or ``"sftp:<path>"``: recorded in the ledger and the object's metadata."""
    size: int
    content_type: str | None = None
    """As declared by the source (the archive detects the real type from magic bytes)."""
    declared_size: int | None = None
    """The size the source announced (HTTP Content-Length), if it announced one."""
    source_mtime: float | None = None
    """The drop file's mtime when it was read (SFTP): the release proves with it that
    the file it moves or deletes is the one that was hashed."""


class RecordingSource(Protocol):
    """Something recordings can be fetched from."""

    name: str

    def can_fetch(self, request: FetchRequest) -> bool:
        """Whether this source should be tried for the request (e.g. the file is there)."""
        ...

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        """Write the recording into ``sink``; raise a TeniosArchiveError subclass on failure."""
        ...

    def after_archived(self, request: FetchRequest, fetched: Fetched) -> str | None:
        """Called only after the S3 read-back succeeded; returns what was done, if anything."""
        ...
