"""What the archiving code needs of a store, as Protocols.

The :class:`~tenios_io.run.archiver.Archiver` and the custody manifests
(:mod:`tenios_io.publish.manifests`) take these, not a concrete store: the pipeline passes
an :class:`~tenios_io.store.ArchiveStore` (its :class:`~tenios_io.store.ArchiveWriter`
alone is a :class:`DocumentWriter` and a :class:`RecordingWriter`), unit tests pass
the in-memory :class:`tenios_io.testing.MemoryStore`, which
tests/integration/test_fakes_contract.py holds to the same contract as the real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Protocol

from tenios_io.recording.spool import Spooled
from tenios_io.store.results import ArchivedObject, ObjectInfo, RetentionMode

__all__ = ["ArchiverStore", "DocumentWriter", "LegalHolds", "RecordingWriter"]


class DocumentWriter(Protocol):
    """Writes small documents (custody manifests) never overwriting, under a policy."""

    @property
    def bucket(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def retention_mode(self) -> RetentionMode: ...

    @property
    def retention_days(self) -> int: ...

    def put_document(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        retain_until: datetime | None = None,
    ) -> str | None:
        """Write ``body`` at ``key`` unless it exists; the same body there already is
        accepted (its version id), another is ArchiveConflict."""
        ...


class RecordingWriter(DocumentWriter, Protocol):
    """Uploads a spooled recording under its key, never overwriting, verified."""

    def archive(
        self,
        spooled: Spooled,
        *,
        recording_uuid: str,
        call_uuid: str | None,
        source: str,
        key_date: date,
        legal_hold: bool = False,
        retention_days: int | None = None,
        audio_metadata: Mapping[str, str] | None = None,
        fetched_at: str | None = None,
    ) -> ArchivedObject:
        """The same bytes under the key already: ``already_archived``; other bytes:
        ArchiveConflict."""
        ...


class LegalHolds(Protocol):
    """Places legal holds, and sees what an object version carries."""

    def set_legal_hold(self, key: str, version_id: str | None, on: bool) -> None: ...

    def head(
        self, key: str, version_id: str | None = None, *, with_tags: bool = False
    ) -> ObjectInfo | None:
        """What the bucket says of an object (version); None if it does not exist."""
        ...


class ArchiverStore(RecordingWriter, LegalHolds, Protocol):
    """Everything the Archiver does with the bucket: upload, manifests, late holds."""
