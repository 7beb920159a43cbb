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

A bucket prefix that forgot this ledger is refused the same way
(:class:`~tenios_io.exceptions.BucketForgotLedger`, exit 2, :func:`require_remembered`):
the bucket's checkpoints older than the ledger's newest, or neither id nor checkpoint
though recordings are archived (S3 lost its data, or the bucket name now names a new
bucket), and a ledger whose custody history lives under another prefix (the prefix is
bound to the ledger, not part of its identity: one ledger, one place).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenios_io.custody.layout import LEDGER_ID_NAME
from tenios_io.exceptions import ArchiveConflict, BucketForgotLedger, BucketOfAnotherLedger
from tenios_io.ledger import Ledger
from tenios_io.publish.checkpoints import Checkpoint, ledger_problem, newest_checkpoint
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
    theirs = check_bucket(ledger, store)
    # The ledger first: a checkpoint another worker writes meanwhile reaches the bucket
    # before the ledger's event, so the bucket read after it can only be newer.
    published = newest_published(ledger)
    anchor = newest_checkpoint(store)
    require_remembered(ledger, store, has_id=theirs is not None, anchor=anchor, published=published)
    if theirs is not None:
        return BucketBinding(ours, key, written=False)
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


@dataclass(frozen=True)
class Published:
    """The newest checkpoint this ledger wrote, as its ``checkpoint`` event records it."""

    key: str
    last_seq: int


def newest_published(ledger: Ledger) -> Published | None:
    """The ledger's newest ``checkpoint`` event (None before its first checkpoint)."""
    for event in reversed(ledger.events_named(["checkpoint"])):
        details = json.loads(event["details"])
        if isinstance(details.get("key"), str) and isinstance(details.get("last_seq"), int):
            return Published(details["key"], details["last_seq"])
    return None


def require_remembered(
    ledger: Ledger,
    store: ArchiveStore,
    *,
    has_id: bool,
    anchor: Checkpoint | None,
    published: Published | None,
) -> None:
    """BucketForgotLedger unless the bucket prefix still holds what this ledger put there.

    - The ledger's newest checkpoint lies under another prefix: TENIOS_S3_PREFIX changed.
      One ledger keeps one custody history in one place; a second prefix would hold
      recordings the first one's log never accounts for (``reconcile`` then reports them
      all as archived without an object).
    - The bucket's newest checkpoint is older than the ledger's newest (or gone): the
      bucket lost objects, or TENIOS_S3_BUCKET names a new bucket of the same name.
    - No ledger id, no checkpoint, and the ledger's newest archived recording is not
      there: the same.

    A bucket of an earlier version (checkpoints, no id) and a new bucket for a ledger
    with nothing archived pass (bind_bucket then writes the id).  ``published`` (the
    ledger's newest checkpoint event) must be read before ``anchor`` (the bucket's).
    """
    where = f"s3://{store.bucket}/{store.prefix}"
    root = ledger_id_key(store.prefix).removesuffix(LEDGER_ID_NAME.rpartition("/")[2])
    if published is not None and not published.key.startswith(root):
        raise BucketForgotLedger(
            f"this ledger keeps its custody history under another prefix (its newest "
            f"checkpoint is {published.key}), not under TENIOS_S3_PREFIX={store.prefix or '/'}: "
            "one ledger archives into one bucket prefix. Set TENIOS_S3_PREFIX back to the "
            "ledger's; for a new prefix use a new ledger (TENIOS_DATABASE_URL)"
        )
    lost = None
    if published is not None and (anchor is None or anchor.last_seq < published.last_seq):
        found = "no checkpoint" if anchor is None else f"checkpoints up to event {anchor.last_seq}"
        lost = (
            f"this ledger checkpointed events up to {published.last_seq} there "
            f"({published.key}), the bucket holds {found}"
        )
    elif not has_id and anchor is None:
        # Neither id nor checkpoint: a new bucket, or one from before ledger ids whose
        # runs never reached a checkpoint.  The newest archived recording says which.
        newest = ledger.newest_archived()
        if newest is not None and newest.s3_key is not None:
            if newest.s3_bucket != store.bucket:
                lost = (
                    f"this ledger archives into s3://{newest.s3_bucket} (its newest "
                    f"recording, {newest.recording_uuid}, is there)"
                )
            elif store.head(newest.s3_key, newest.s3_version_id) is None:
                lost = (
                    "the bucket holds neither its ledger id nor any checkpoint, nor the "
                    f"ledger's newest archived recording ({newest.s3_key})"
                )
    if lost is not None:
        raise BucketForgotLedger(
            f"the archive bucket prefix {where} has lost what this ledger archived into it: "
            f"{lost}. S3 lost the data, or TENIOS_S3_BUCKET now names another bucket. "
            "Nothing was fetched; find the archive (`tenios-archive audit reconcile` lists "
            "the missing objects) before running again"
        )


def _retain_until(store: ArchiveStore, now: datetime) -> datetime | None:
    """Like a checkpoint: locked for the store's retention period from now, if any."""
    if store.retention_mode == "none" or store.retention_days <= 0:
        return None
    return now.astimezone(UTC) + timedelta(days=store.retention_days)
