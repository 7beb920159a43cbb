"""Custody manifests still to be written: the ``manifest_queue``.

Each archived batch gets one custody manifest in the bucket (tenios_io/publish/manifests.py).
A recording enters the queue in the transaction that archives it
(:meth:`WorkQueue.write_outcomes`) and leaves it once a manifest naming it is in the
bucket, so a crash in between loses nothing: the ledger has every fact the manifest
holds, and the next run writes the manifests that are missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tenios_io.custody import chain
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.records import as_utc
from tenios_io.ledger.states import State
from tenios_io.ledger.tables import custody_events, custody_queue, manifest_queue, recordings

__all__ = ["ManifestEntry", "ManifestQueue"]

_M = manifest_queue.c
_CHUNK = 900
"""uuids per IN (...) list (SQLite's variable limit is far above; keeps statements small)."""


@dataclass(frozen=True)
class ManifestEntry:
    """One archived recording as its manifest line tells it: the columns of its row the
    line names (not the whole row) and its event digests."""

    recording_uuid: str
    s3_bucket: str | None
    s3_key: str | None
    s3_version_id: str | None
    sha256: str | None
    size_bytes: int | None
    retention_mode: str | None
    retain_until: datetime | None
    legal_hold: bool
    archived_at: datetime | None
    event_digests: tuple[str, ...]
    """The entry digests (chain.entry_digest) of its custody events up to ``archived``,
    in chain order: what the custody log holds for it."""


#: What a manifest line needs of a recording's row, in ManifestEntry's field order.
_ENTRY_COLUMNS = (
    "recording_uuid",
    "s3_bucket",
    "s3_key",
    "s3_version_id",
    "sha256",
    "size_bytes",
    "retention_mode",
    "retain_until",
    "legal_hold",
    "archived_at",
)
#: Built once (not per batch): the archived rows among ``:keys``.
_ARCHIVED_ROWS = sa.select(*(recordings.c[name] for name in _ENTRY_COLUMNS)).where(
    recordings.c.recording_uuid.in_(sa.bindparam("keys", expanding=True)),
    recordings.c.state == State.ARCHIVED.value,
)
_EVENT_COLUMNS = ("recording_uuid", "event", "actor", "occurred_at", "details")


def _events_query() -> sa.Select[Any]:
    """The events of ``:keys``: integrated ones by seq, then what still waits in the
    queue, in ONE statement (one snapshot, so an event the sequencer moves meanwhile is
    seen exactly once)."""
    integrated = sa.select(
        *(custody_events.c[name] for name in _EVENT_COLUMNS),
        sa.literal(0).label("part"),
        custody_events.c.seq.label("position"),
    ).where(custody_events.c.recording_uuid.in_(sa.bindparam("keys", expanding=True)))
    queued = sa.select(
        *(custody_queue.c[name] for name in _EVENT_COLUMNS),
        sa.literal(1).label("part"),
        custody_queue.c.id.label("position"),
    ).where(custody_queue.c.recording_uuid.in_(sa.bindparam("keys", expanding=True)))
    union = sa.union_all(integrated, queued).subquery()
    return sa.select(*(union.c[name] for name in _EVENT_COLUMNS)).order_by(
        union.c.part, union.c.position
    )


_EVENTS = _events_query()
#: Built once: take ``:keys`` off the queue.
_UNQUEUE = manifest_queue.delete().where(
    manifest_queue.c.recording_uuid.in_(sa.bindparam("keys", expanding=True))
)


class ManifestQueue(LedgerCore):
    """Which archived recordings still wait for their custody manifest."""

    def manifest_entries(self, recording_uuids: Iterable[str]) -> list[ManifestEntry]:
        """The archived recordings among ``recording_uuids`` with their event digests,
        in uuid order (one read of rows and one of events per chunk).

        Reads only the columns a manifest line names, as plain tuples: a manifest is
        written per archived batch, on every worker's hot path."""
        keys = sorted({key.lower() for key in recording_uuids})
        entries: list[ManifestEntry] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            with self.engine.connect() as conn:
                found = {
                    row[0]: row for row in conn.execute(_ARCHIVED_ROWS, {"keys": chunk}).tuples()
                }
                digests = _event_digests(conn, sorted(found))
            for key in sorted(found):
                (uuid, bucket, s3_key, version, sha256, size, mode, until, hold, at) = found[key]
                entries.append(
                    ManifestEntry(
                        uuid,
                        bucket,
                        s3_key,
                        version,
                        sha256,
                        size,
                        mode,
                        as_utc(until),
                        bool(hold),
                        as_utc(at),
                        tuple(digests.get(key, ())),
                    )
                )
        return entries

    def manifests_written(self, recording_uuids: Iterable[str]) -> None:
        """These recordings are in a manifest in the bucket: out of the queue."""
        keys = sorted({key.lower() for key in recording_uuids})
        if not keys:
            return
        with self._write() as conn:
            for start in range(0, len(keys), _CHUNK):
                conn.execute(_UNQUEUE, {"keys": keys[start : start + _CHUNK]})

    def manifests_missing(self, *, queued_before: datetime, limit: int = 10_000) -> list[str]:
        """Recordings queued at or before ``queued_before`` whose manifest is still not written
        (their writer crashed, or S3 refused it), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_M.recording_uuid)
                .where(_M.queued_at <= queued_before)
                .order_by(_M.queued_at, _M.recording_uuid)
                .limit(limit)
            )
            return [row.recording_uuid for row in rows]

    def manifests_pending(self) -> list[tuple[str, datetime]]:
        """Every recording waiting for its manifest, with when it was queued."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_M.recording_uuid, _M.queued_at).order_by(_M.queued_at, _M.recording_uuid)
            )
            out = []
            for row in rows:
                queued = as_utc(row.queued_at)
                assert queued is not None
                out.append((row.recording_uuid, queued))
            return out


def queue_manifest_rows(conn: sa.Connection, recording_uuids: Sequence[str], now: datetime) -> None:
    """Queue just-archived recordings for their manifest, in the archiving transaction."""
    if recording_uuids:
        conn.execute(
            manifest_queue.insert(),
            [{"recording_uuid": key, "queued_at": now} for key in recording_uuids],
        )


def _event_digests(conn: sa.Connection, keys: Sequence[str]) -> dict[str, list[str]]:
    """Each recording's event entry digests up to its ``archived`` event, in chain order
    (:data:`_EVENTS`), each recomputed from the stored fields (chain.row_digest)."""
    if not keys:
        return {}
    digests: dict[str, list[str]] = {}
    archived_upto: dict[str, int] = {}
    recanonical, digest = chain.recanonical, chain.canonical_entry_digest
    for key, event, actor, occurred_at, details in conn.execute(_EVENTS, {"keys": keys}).tuples():
        found = digests.setdefault(key, [])
        found.append(digest(key, event, actor, occurred_at, recanonical(details)))
        if event == "archived":
            archived_upto[key] = len(found)
    return {key: found[: archived_upto.get(key, len(found))] for key, found in digests.items()}
