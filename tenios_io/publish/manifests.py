"""Custody manifests: one JSON-lines object per archived batch, derived from the ledger.

One S3 write per recording means the recording object carries its own custody facts
(tenios_io/store/metadata.py); what ties a batch of objects to the custody log is
its manifest, written once after the batch is verified and its outcomes are in the
ledger, under
``{prefix}/_custody/manifests/{yyyy}/{mm}/{dd}/{run_id}-{batch}.jsonl`` with
``If-None-Match: *`` and, where the bucket has Object Lock, the store's lock mode for
the retention period (as the custody log's tiles are written).  One line per
recording, canonical JSON (sorted keys, no whitespace, ASCII)::

    {"archived_at": "...", "bucket": "...", "events": ["<entry digest>", ...],
     "key": "...", "legal_hold": false, "recording_uuid": "...",
     "retain_until": "...Z", "retention_mode": "governance", "sha256": "...",
     "size": 123, "version_id": "..."}

``events`` are the entry digests (:func:`tenios_io.custody.chain.entry_digest`) of
the recording's custody events up to ``archived``: each can be found in the custody
log's entry bundles.  ``legal_hold`` and retention are as archived.

A manifest is derived: the ledger queues each archived recording in the same
transaction (``manifest_queue``) and forgets it once a manifest naming it is in the
bucket.  A crash before that loses nothing; the next run writes the missing
manifests (:func:`write_missing_manifests`), and ``audit reconcile`` reports them
until then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tenios_io import crashpoints
from tenios_io.custody.chain import format_time
from tenios_io.ledger import Ledger
from tenios_io.ledger.manifests import ManifestEntry
from tenios_io.store.keys import manifest_key
from tenios_io.store.protocols import DocumentWriter
from tenios_io.store.retention import iso

__all__ = [
    "CONTENT_TYPE",
    "ManifestWritten",
    "manifest_body",
    "manifest_line",
    "write_batch_manifest",
    "write_missing_manifests",
]

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/x-ndjson"
_MISSING_BATCH: Final = 500
"""Recordings per manifest when writing the missing ones."""
#: A line's canonical JSON encoder, built once (``json.dumps`` with options builds one
#: per call).
_LINE_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


@dataclass(frozen=True)
class ManifestWritten:
    """A manifest in the bucket: its key, version and how many recordings it names."""

    key: str
    version_id: str | None
    recordings: int


def manifest_line(entry: ManifestEntry) -> dict[str, Any]:
    """One recording's line (as a dict)."""
    return {
        "recording_uuid": entry.recording_uuid,
        "bucket": entry.s3_bucket,
        "key": entry.s3_key,
        "version_id": entry.s3_version_id,
        "sha256": entry.sha256,
        "size": entry.size_bytes,
        "retention_mode": entry.retention_mode or "none",
        "retain_until": iso(entry.retain_until) if entry.retain_until else None,
        "legal_hold": entry.legal_hold,
        "archived_at": format_time(entry.archived_at) if entry.archived_at else None,
        "events": list(entry.event_digests),
    }


def manifest_body(entries: Iterable[ManifestEntry]) -> bytes:
    """The manifest's bytes: one canonical JSON line per recording."""
    return b"".join(
        _LINE_ENCODER.encode(manifest_line(entry)).encode("ascii") + b"\n" for entry in entries
    )


def write_batch_manifest(
    ledger: Ledger,
    store: DocumentWriter,
    recording_uuids: Iterable[str],
    *,
    run_id: str,
    batch: str,
) -> ManifestWritten | None:
    """Write the manifest of these archived recordings and take them off the ledger's
    queue; None if none of them is archived.

    Raises the store's errors (StoreUnavailable, BucketNotUsable, ArchiveConflict) or
    LedgerUnavailable; then the recordings stay queued for the next run.
    """
    asked = sorted({key.lower() for key in recording_uuids})
    entries = ledger.manifest_entries(asked)
    if not entries:
        ledger.manifests_written(asked)  # nothing archived to name (purged meanwhile?)
        return None
    now = datetime.now(UTC)
    key = manifest_key(store.prefix, now.date(), run_id, batch)
    crashpoints.reached("before_manifest")
    version = store.put_document(
        key, manifest_body(entries), content_type=CONTENT_TYPE, retain_until=_retain_until(store)
    )
    ledger.manifests_written(asked)
    log.info("custody manifest s3://%s/%s names %d recording(s)", store.bucket, key, len(entries))
    return ManifestWritten(key, version, len(entries))


def write_missing_manifests(
    ledger: Ledger,
    store: DocumentWriter,
    *,
    run_id: str,
    grace_seconds: float,
    batch_size: int = _MISSING_BATCH,
) -> list[ManifestWritten]:
    """Write the manifests a crash (or S3) left unwritten: recordings archived more than
    ``grace_seconds`` ago (their writer had its lease time to write them) and still
    queued, ``batch_size`` per manifest."""
    written: list[ManifestWritten] = []
    before = ledger.now() - timedelta(seconds=grace_seconds)
    number = 0
    while missing := ledger.manifests_missing(queued_before=before, limit=batch_size):
        number += 1
        done = write_batch_manifest(
            ledger, store, missing, run_id=run_id, batch=f"missing{number:04d}"
        )
        if done is not None:
            written.append(done)
    if written:
        log.warning(
            "wrote %d custody manifest(s) an earlier run left unwritten (%d recording(s))",
            len(written),
            sum(w.recordings for w in written),
        )
    return written


def _retain_until(store: DocumentWriter) -> datetime | None:
    """Now + the store's retention period: a manifest outlives the recordings it names."""
    if store.retention_mode == "none" or store.retention_days <= 0:
        return None
    return datetime.now(UTC) + timedelta(days=store.retention_days)
