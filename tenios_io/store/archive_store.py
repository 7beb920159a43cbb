"""ArchiveStore: one bucket's writer, reader and retention policy, built together.

The work is done by three parts, each usable on its own:

- :class:`~tenios_io.store.writer.ArchiveWriter` — verified, never-overwriting
  uploads of recordings and documents, and the bucket check before a run;
- :class:`~tenios_io.store.reader.ArchiveReader` — what the audit reads back
  (HEAD, listings, streaming and hashing, documents, old sidecars);
- :class:`~tenios_io.store.retention_policy.RetentionPolicy` — Object Lock,
  retention planning, legal holds and deletes after retention.

:class:`ArchiveStore` validates the settings once, builds the three on one
:class:`~tenios_io.store.bucket.Bucket`, and keeps the methods callers used before
the split (the CLI, flows and many tests hold a store); new code takes the part it
needs (``store.writer``, ``store.reader``, ``store.retention``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from tenios_io import __version__
from tenios_io.recording.source import Sink
from tenios_io.recording.spool import Spooled
from tenios_io.store.bucket import Bucket
from tenios_io.store.keys import validate_prefix
from tenios_io.store.reader import ArchiveReader
from tenios_io.store.results import (
    ArchivedObject,
    BucketStatus,
    ObjectInfo,
    ObjectSummary,
    ObjectVersion,
    RetentionMode,
    SseMode,
)
from tenios_io.store.retention_policy import RetentionPolicy
from tenios_io.store.upload import MiB
from tenios_io.store.writer import ArchiveWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tenios_io.config import Settings

__all__ = ["ArchiveStore"]

LOGGER_NAME: Final = "tenios_io.store"
"""The store's default logger (the package's name, whichever module logs)."""


class ArchiveStore:
    """Verified, never-overwriting uploads of spooled recordings into one bucket.

    ``s3_client`` is injected (see :func:`make_s3_client`).  ``retention_days``
    counts from the recording's date (midnight UTC).  Objects larger than
    ``multipart_threshold`` bytes go up in ``part_size`` parts, one at a time, so
    memory stays near one part whatever the recording's size.
    """

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        *,
        prefix: str = "recordings",
        retention_mode: RetentionMode = "governance",
        retention_days: int = 2557,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 16 * MiB,
        sse: SseMode | None = None,
        kms_key_id: str | None = None,
        tool_version: str = __version__,
        logger: logging.Logger | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must be a bucket name")
        log = logger or logging.getLogger(LOGGER_NAME)
        s3 = Bucket(s3_client, bucket, sse=sse, kms_key_id=kms_key_id, log=log)
        self._client = s3_client
        self.retention = RetentionPolicy(s3, mode=retention_mode, days=retention_days)
        if sse not in (None, "AES256", "aws:kms"):
            raise ValueError("sse must be None, 'AES256' or 'aws:kms'")
        if kms_key_id is not None and sse != "aws:kms":
            raise ValueError("kms_key_id is only used with sse='aws:kms'")
        clean_prefix = validate_prefix(prefix)
        self.reader = ArchiveReader(s3, clean_prefix)
        self.writer = ArchiveWriter(
            s3,
            clean_prefix,
            self.retention,
            multipart_threshold=multipart_threshold,
            part_size=part_size,
            tool_version=tool_version,
        )

    @classmethod
    def from_settings(cls, settings: Settings, s3_client: S3Client) -> ArchiveStore:
        """A store configured from :class:`~tenios_io.config.Settings`."""
        return cls(
            s3_client,
            settings.require_bucket(),
            prefix=settings.s3_prefix,
            retention_mode=settings.retention_mode,
            retention_days=settings.retention_days,
            multipart_threshold=settings.multipart_threshold_mb * MiB,
            sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id,
        )

    # -- what every part shares --------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.writer.bucket

    @property
    def prefix(self) -> str:
        return self.writer.prefix

    @property
    def retention_mode(self) -> RetentionMode:
        """The retention this store applies to what it writes."""
        return self.retention.mode

    @property
    def retention_days(self) -> int:
        """The store's retention period in days (for recordings: from the recording's date)."""
        return self.retention.days

    @property
    def connections(self) -> int:
        """How many requests the client can have open at once (its connection pool):
        callers that write in parallel use no more threads than this."""
        config = getattr(getattr(self._client, "meta", None), "config", None)
        return max(1, int(getattr(config, "max_pool_connections", None) or 1))

    # -- the writer --------------------------------------------------------------------

    def key_for(self, recording_uuid: str, day: date, extension: str) -> str:
        return self.writer.key_for(recording_uuid, day, extension)

    def check(self) -> BucketStatus:
        return self.writer.check()

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
        return self.writer.archive(
            spooled,
            recording_uuid=recording_uuid,
            call_uuid=call_uuid,
            source=source,
            key_date=key_date,
            legal_hold=legal_hold,
            retention_days=retention_days,
            audio_metadata=audio_metadata,
            fetched_at=fetched_at,
        )

    def put_document(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        retain_until: datetime | None = None,
    ) -> str | None:
        return self.writer.put_document(
            key, body, content_type=content_type, retain_until=retain_until
        )

    def replace_document(
        self, key: str, body: bytes, *, content_type: str, etag: str | None
    ) -> bool:
        return self.writer.replace_document(key, body, content_type=content_type, etag=etag)

    # -- the reader --------------------------------------------------------------------

    def head(
        self, key: str, version_id: str | None = None, *, with_tags: bool = False
    ) -> ObjectInfo | None:
        return self.reader.head(key, version_id, with_tags=with_tags)

    def iter_objects(
        self, prefix: str | None = None, *, page_size: int = 1000
    ) -> Iterator[ObjectSummary]:
        return self.reader.iter_objects(prefix, page_size=page_size)

    def iter_versions(
        self, prefix: str | None = None, *, page_size: int = 1000
    ) -> Iterator[ObjectVersion]:
        return self.reader.iter_versions(prefix, page_size=page_size)

    def download(self, key: str, sink: Sink, *, version_id: str | None = None) -> int:
        return self.reader.download(key, sink, version_id=version_id)

    def hash_object(self, key: str, *, version_id: str | None = None) -> tuple[str, int]:
        return self.reader.hash_object(key, version_id=version_id)

    def read_document(self, key: str) -> tuple[bytes, str] | None:
        return self.reader.read_document(key)

    def read_sidecar(self, key: str) -> dict[str, Any] | None:
        return self.reader.read_sidecar(key)

    # -- retention ---------------------------------------------------------------------

    def object_lock_enabled(self) -> bool:
        return self.retention.object_lock_enabled()

    def set_legal_hold(self, key: str, version_id: str | None, on: bool) -> None:
        self.retention.set_legal_hold(key, version_id, on)

    def delete_version(self, key: str, version_id: str, *, bypass_governance: bool = False) -> None:
        self.retention.delete_version(key, version_id, bypass_governance=bypass_governance)
