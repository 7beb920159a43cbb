"""Shared by the audit tests (no tests here): archived recordings made by the real pipeline.

:class:`AuditWorld` archives recordings through :class:`~tenios_io.run.archiver.Archiver`
(claim → fetch → spool + SHA-256 → verified upload → ledger) with a
:class:`BytesSource` that serves known bytes — the real pipeline minus the API —
against a moto bucket and a real ledger (SQLite file or PostgreSQL).  The ledger
runs on a :class:`Clock` the test can move.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tenios_io.ledger import Ledger, NewRecording, Recording, create_ledger_engine
from tenios_io.ledger.tables import custody_events
from tenios_io.recording.source import Fetched, FetchRequest, Sink
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.retry import RetryPolicy
from tenios_io.store import ArchiveStore, RetentionMode
from tests.fixtures.legacy import (
    forget_manifests,
    write_legacy_sidecar,
    writing_as_earlier_version,
)
from tests.fixtures.moto import sample_wav

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Clock:
    """The ledger's clock: real time by default, moved by the test."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class BytesSource:
    """A RecordingSource serving fixed bytes per recording_uuid (the API's place)."""

    payloads: dict[str, bytes] = field(default_factory=dict)
    name: str = "api"

    def can_fetch(self, request: FetchRequest) -> bool:
        return request.recording_uuid in self.payloads

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        data = self.payloads[request.recording_uuid]
        sink.write(data)
        return Fetched(source="api", size=len(data), content_type="audio/wav")

    def after_archived(self, request: FetchRequest, fetched: Fetched) -> str | None:
        return None


@dataclass
class AuditWorld:
    """A ledger, a store on a moto bucket, and a way to archive recordings for real."""

    ledger: Ledger
    store: ArchiveStore
    s3: S3Client
    bucket: str
    clock: Clock
    source: BytesSource

    def archive(
        self,
        count: int = 1,
        *,
        recorded_at: datetime | None = None,
        size: int = 2000,
        legal_hold: bool = False,
        earlier_version: bool = False,
    ) -> list[str]:
        """Register ``count`` recordings and archive them; returns their uuids.

        ``earlier_version``: as versions before one-write-per-recording did — object
        metadata without ``size`` / ``fetched-at``, and a ``.json`` sidecar beside it.
        """
        recorded = recorded_at or self.clock.now
        ids = [str(uuid.uuid4()) for _ in range(count)]
        for n, key in enumerate(ids):
            self.source.payloads[key] = sample_wav(size, seed=hash(key) % 10_000 + n)
        self.ledger.register([NewRecording(key, recorded_at=recorded) for key in ids])
        if legal_hold:
            for key in ids:
                self.ledger.annotate(
                    key, "legal_hold", {"reason": "test"}, updates={"legal_hold": True}
                )
        archiver = self.archiver()
        claims = self.ledger.claim_batch(count, lease_seconds=60)
        assert sorted(c.recording_uuid for c in claims) == sorted(ids)
        # Archived the day it was recorded (a recording whose retention is over now was
        # locked back then: today a lock mode refuses a retain-until in the past).
        policy, saved = self.store.retention, self.store.retention.clock
        policy.clock = lambda: recorded
        try:
            with writing_as_earlier_version() if earlier_version else contextlib.nullcontext():
                results = archiver.archive_batch(claims)
        finally:
            policy.clock = saved
        assert {r.outcome for r in results} == {Outcome.ARCHIVED}, results
        if earlier_version:
            forget_manifests(self.ledger, ids)
            for key in ids:
                write_legacy_sidecar(self.s3, self.ledger, self.ledger.get(key))
        self.ledger.integrate_all()  # as a run does before its checkpoint
        return ids

    def archiver(self) -> Archiver:
        """The pipeline's archiver over this world's ledger, store and bytes."""
        return Archiver(
            ledger=self.ledger,
            store=self.store,
            sources=[self.source],
            policy=RetryPolicy(max_attempts=1),
            lease_seconds=60,
        )

    def get(self, recording_uuid: str) -> Recording:
        return self.ledger.get(recording_uuid)

    def events(self, recording_uuid: str) -> list[str]:
        return [e["event"] for e in self.ledger.events(recording_uuid)]

    def event_details(self, recording_uuid: str, name: str) -> list[dict[str, Any]]:
        events = self.ledger.events(recording_uuid)
        return [json.loads(e["details"]) for e in events if e["event"] == name]

    def sql(self, statement: str, **params: Any) -> None:
        """Run raw SQL on the ledger's database (the tamperer's tool)."""
        with self.ledger.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def event_rows(self) -> list[dict[str, Any]]:
        self.ledger.integrate_all()  # what the sequencer has not integrated yet, too
        with self.ledger.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    sa.select(custody_events).order_by(custody_events.c.seq)
                ).mappings()
            ]


def make_world(
    database_url: str,
    s3: S3Client,
    bucket: str,
    *,
    clock: Clock | None = None,
    retention_mode: RetentionMode = "governance",
    retention_days: int = 365,
) -> AuditWorld:
    """An AuditWorld on a migrated database and a bucket (engine disposed by the caller)."""
    clock = clock or Clock()
    ledger = Ledger(
        create_ledger_engine(database_url), actor="test", clock=clock, lease_clock="worker"
    )
    store = ArchiveStore(
        s3,
        bucket,
        prefix="recordings",
        retention_mode=retention_mode,
        retention_days=retention_days,
    )
    return AuditWorld(ledger, store, s3, bucket, clock, BytesSource())


def versions_of(s3: S3Client, bucket: str, key: str) -> list[str]:
    """Version ids stored under exactly ``key`` (no delete markers)."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return [v["VersionId"] for v in listed if v["Key"] == key]


def keys_of(s3: S3Client, bucket: str) -> list[str]:
    """Every current key in the bucket."""
    return sorted(
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    )


FORGERIES = ("other bytes, same size, metadata copied", "other size, no metadata")
"""How a forged version can look (:func:`forge_version`)."""


def forge_version(s3: S3Client, bucket: str, key: str, forgery: str) -> tuple[str, bytes]:
    """Put a new version with other bytes at ``key`` — what anyone allowed s3:PutObject on
    the prefix can do (Object Lock does not prevent new versions); a plain GET answers it
    from then on.  Returns its version id and bytes."""
    if forgery == FORGERIES[0]:
        head = s3.head_object(Bucket=bucket, Key=key)
        body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[-1] ^= 0xFF
        put = s3.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head["Metadata"])
    else:
        assert forgery == FORGERIES[1], forgery
        body = bytearray(b"RIFF forged, another size and no metadata")
        put = s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    return put["VersionId"], bytes(body)


def hide_under_delete_marker(s3: S3Client, bucket: str, key: str) -> str:
    """Delete ``key`` without a version id: a delete marker on top (the archived version
    stays, locked, but a GET answers 404).  Returns the marker's version id."""
    deleted = s3.delete_object(Bucket=bucket, Key=key)
    assert deleted.get("DeleteMarker"), deleted
    return deleted["VersionId"]


def recent(days: int) -> datetime:
    """A recording date ``days`` ago (midnight UTC)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


__all__: Sequence[str] = [
    "FORGERIES",
    "AuditWorld",
    "BytesSource",
    "Clock",
    "forge_version",
    "hide_under_delete_marker",
    "keys_of",
    "make_world",
    "recent",
    "versions_of",
]
