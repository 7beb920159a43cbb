"""A ledger and its bucket prefix know each other: the ledger's id, kept in the bucket.

One ledger writes one custody history into one bucket prefix.  A second ledger
pointed at the same prefix would archive a whole night and then fail at the
checkpoint, its chain contradicting the first ledger's checkpoints in a way that
reads as tampering.  So the ledger's id (``ledger_identity``, made by the migration)
is written into the bucket at the first run::

    {prefix}/_custody/ledger-id     {"format": "tenios-archive ledger id v1",
                                     "ledger_id": "<uuid>"}

with ``If-None-Match: *`` and, where the bucket has Object Lock, the store's
retention counted from now (like a checkpoint), and every run's preflight and every
``audit`` command that reads the bucket compare it with the ledger's
(:class:`~tenios_io.exceptions.BucketOfAnotherLedger`, exit 2, on a mismatch).

A bucket written by an earlier version has no id: the first run writes it, after
checking that the bucket's newest checkpoint pins an event this ledger has (else the
prefix holds another ledger's history and nothing is written).
``ledger restore --from-bucket`` adopts the bucket's id.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenios_io.custody.layout import LEDGER_ID_NAME
from tenios_io.exceptions import ArchiveConflict, BucketOfAnotherLedger
from tenios_io.ledger import Ledger
from tenios_io.publish.checkpoints import ledger_problem, newest_checkpoint
from tenios_io.store import ArchiveStore

FORMAT = "tenios-archive ledger id v1"
_MAX_DOCUMENT_BYTES = 4096
_WHAT_TO_DO = (
    "Two ledgers must not share one bucket prefix: point TENIOS_S3_PREFIX (or "
    "TENIOS_S3_BUCKET) at a place of this ledger's own, or TENIOS_DATABASE_URL at the "
    "ledger that wrote it; if that ledger's database was lost, rebuild it into an empty "
    "database with `tenios-archive ledger restore --from-bucket`"
)


def ledger_id_key(store_prefix: str) -> str:
    """Where a store with this key prefix keeps its ledger's id."""
    return f"{store_prefix}/{LEDGER_ID_NAME}" if store_prefix else LEDGER_ID_NAME


def ledger_id_document(ledger_id: str) -> bytes:
    """The bytes written at :func:`ledger_id_key` (the same for the same id)."""
    return (json.dumps({"format": FORMAT, "ledger_id": ledger_id}, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class BucketBinding:
    """The ledger id this ledger and its bucket prefix share."""

    ledger_id: str
    key: str
    written: bool
    """The id was written into the bucket just now (a new bucket, or one from an
    earlier version)."""


def read_bucket_ledger_id(store: ArchiveStore) -> str | None:
    """The ledger id kept in the bucket prefix, None when there is none (an earlier
    version's bucket, or a new one); BucketOfAnotherLedger when the object is not a
    ledger id document."""
    key = ledger_id_key(store.prefix)
    if store.head(key) is None:
        return None
    buffer = io.BytesIO()
    store.download(key, buffer)
    body = buffer.getvalue()
    try:
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise ValueError("too large")
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT!r} document")
        found = document["ledger_id"]
        if not isinstance(found, str) or not found:
            raise ValueError("no ledger_id")
    except (ValueError, KeyError) as exc:
        raise BucketOfAnotherLedger(
            f"s3://{store.bucket}/{key} should hold the id of the ledger that archives into "
            f"this bucket prefix, but is unreadable ({exc}); restore it or point "
            "TENIOS_S3_PREFIX elsewhere"
        ) from None
    return found


def check_bucket(ledger: Ledger, store: ArchiveStore) -> str | None:
    """Compare the bucket's ledger id with the ledger's (read only).

    Returns the bucket's id (None when it has none yet); BucketOfAnotherLedger when it
    names another ledger.
    """
    theirs = read_bucket_ledger_id(store)
    if theirs is not None:
        ours = ledger.ledger_id()
        if theirs != ours:
            raise BucketOfAnotherLedger(
                f"the archive bucket prefix s3://{store.bucket}/{store.prefix} belongs to "
                f"another ledger: {ledger_id_key(store.prefix)} names ledger {theirs}, this "
                f"ledger (TENIOS_DATABASE_URL) is {ours}.  {_WHAT_TO_DO}"
            )
    return theirs


def bind_bucket(ledger: Ledger, store: ArchiveStore) -> BucketBinding:
    """Check the bucket's ledger id, writing this ledger's where the bucket has none.

    A bucket without an id whose newest checkpoint pins an event this ledger does not
    have (or has with another hash) holds another ledger's history: nothing is written
    and BucketOfAnotherLedger says so.  Two ledgers binding a new bucket at once: one
    write wins (``If-None-Match: *``), the other is refused the same way.
    """
    key = ledger_id_key(store.prefix)
    ours = ledger.ledger_id()
    if check_bucket(ledger, store) is not None:
        return BucketBinding(ours, key, written=False)
    anchor = newest_checkpoint(store)
    if anchor is not None:
        problem = ledger_problem(ledger, anchor)
        if problem is not None:
            raise BucketOfAnotherLedger(
                f"the archive bucket prefix s3://{store.bucket}/{store.prefix} keeps custody "
                f"checkpoints this ledger (TENIOS_DATABASE_URL) did not write: {anchor.key} "
                f"pins event {anchor.last_seq} with hash {anchor.last_hash[:16]}…, which this "
                "ledger does not have.  Another ledger archives here, or this ledger lost "
                f"events (`tenios-archive audit verify-chain` tells which).  {_WHAT_TO_DO}"
            )
    try:
        store.put_document(
            key, ledger_id_document(ours), retain_until=_retain_until(store, ledger.now())
        )
    except ArchiveConflict:
        # Bound a moment ago: by another ledger (check_bucket says so), or by another
        # run of this one (a document with more fields, from a later version).
        if check_bucket(ledger, store) is None:
            raise
        return BucketBinding(ours, key, written=False)
    return BucketBinding(ours, key, written=True)


def _retain_until(store: ArchiveStore, now: datetime) -> datetime | None:
    """Like a checkpoint: locked for the store's retention period from now, if any."""
    if store.retention_mode == "none" or store.retention_days <= 0:
        return None
    return now.astimezone(UTC) + timedelta(days=store.retention_days)
