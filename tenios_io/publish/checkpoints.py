"""Checkpoints of the custody chain in the bucket: the database alone cannot rewrite history.

The hash chain proves that no event was edited, inserted, removed or reordered —
as long as the chain is whole.  Someone with write access to the database could
still cut off the tail, or re-hash everything after an edit.  A checkpoint pins
the chain head outside the database: a small JSON object in the archive bucket,

    {prefix}/_custody/checkpoints/{last_seq:020d}.json

written with ``If-None-Match: *`` (never overwritten) and, where the bucket has
Object Lock, under the store's retention mode for the store's retention period
counted from now (so a checkpoint outlives every recording it covers).  The key
sits outside the recordings layout (``parse_object_key`` does not match it) and
sorts by sequence number.  The document::

    {"format": "tenios-archive custody checkpoint v1", "event_count": N,
     "last_seq": N, "last_hash": "<sha256 hex>", "written_at": "…Z",
     "tool_version": "…", "bucket": "…", "prefix": "…", "database": "postgresql",
     "verified_from_seq": S, "previous": {"key": …, "last_seq": …, "last_hash": …} | null}

Writing one first re-verifies the chain from the newest checkpoint in the bucket
to the head (the whole chain the first time) and refuses (ChainBroken) if it does
not verify, so a checkpoint never vouches for a broken chain; then a ``checkpoint``
custody event records the key, version id and the document's SHA-256.

:func:`check_checkpoints` is the other half: every checkpoint in the bucket must
still match the ledger — the event with that sequence number exists and has that
exact hash — and every ``checkpoint`` event in the ledger must still have its
object, unaltered, in the bucket.  History changes made after the newest
checkpoint are caught by the next one: write them often (the nightly run writes
one at its end).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tenios_io import __version__
from tenios_io.custody.chain import GENESIS, NewEvent, event_hash, format_time
from tenios_io.custody.layout import CHAIN_CHECKPOINT_DIR
from tenios_io.custody.signing import Signer
from tenios_io.custody.times import iso
from tenios_io.exceptions import ArchiveConflict, ChainBroken, VerificationFailed
from tenios_io.ledger import Ledger
from tenios_io.publish.log import publish_log
from tenios_io.publish.witnessing import WitnessReport, WitnessSession
from tenios_io.store import ArchiveStore

FORMAT = "tenios-archive custody checkpoint v1"
CHECKPOINT_DIR = CHAIN_CHECKPOINT_DIR
CHECKPOINT_EVENT = "checkpoint"
LOG_FORKED_EVENT = "log_forked"
_MAX_DOCUMENT_BYTES = 64 * 1024


def checkpoint_prefix(store_prefix: str) -> str:
    """Where the checkpoints of a store with this key prefix live (ends with ``/``)."""
    return f"{store_prefix}/{CHECKPOINT_DIR}/" if store_prefix else f"{CHECKPOINT_DIR}/"


def checkpoint_key(store_prefix: str, last_seq: int) -> str:
    """The key of the checkpoint of the chain up to event ``last_seq``."""
    return f"{checkpoint_prefix(store_prefix)}{last_seq:020d}.json"


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of the chain head, as written to (or read from) the bucket."""

    key: str
    last_seq: int
    last_hash: str
    event_count: int
    written_at: datetime
    tool_version: str
    sha256: str
    """Of the JSON document's bytes (recorded in the ``checkpoint`` custody event)."""
    version_id: str | None = None
    lock_mode: str | None = None
    retain_until: datetime | None = None
    previous: Mapping[str, Any] | None = None
    event_hash: str | None = None
    """The hash of the ``checkpoint`` custody event (only when just written)."""
    already_written: bool = False
    """An identical checkpoint of this head was already in the bucket."""
    witness: WitnessReport | None = None
    """What the witnesses answered to the log checkpoint (only when just written)."""


@dataclass(frozen=True)
class CheckpointProblem:
    """A checkpoint that no longer agrees with the ledger (or is gone)."""

    key: str
    kind: str
    """``missing_event``, ``rewritten``, ``unreadable``, ``object_missing``, ``object_altered``."""
    message: str


@dataclass(frozen=True)
class CheckpointReport:
    """What :func:`check_checkpoints` found."""

    checked: int
    newest: Checkpoint | None
    problems: tuple[CheckpointProblem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


# -- writing ---------------------------------------------------------------------------------


def write_checkpoint(
    ledger: Ledger,
    store: ArchiveStore,
    *,
    actor: str | None = None,
    signer: Signer | None = None,
    witnesses: WitnessSession | None = None,
) -> Checkpoint:
    """Verify the chain since the newest checkpoint and pin its head in the bucket.

    Once the chain verifies, the custody log (tiles, entry bundles) is extended to the
    head and a checkpoint of it signed by ``signer`` (unsigned, with a warning, when
    None) — see :mod:`tenios_io.publish.log`.

    Returns the checkpoint written (or the identical one already there).  Raises
    ChainBroken if the chain does not verify or contradicts a checkpoint, and the
    store's errors (BucketNotUsable, StoreUnavailable) if the bucket refuses.
    """
    ledger.integrate_all()  # the checkpoint covers every event written before it
    head = ledger.chain_head()
    anchor = newest_checkpoint(store)
    verified_from = _verify_segment(ledger, anchor, head.seq, head.hash)
    logged = publish_log(ledger, store, signer, head_seq=head.seq, witnesses=witnesses)
    now = ledger.now()
    key = checkpoint_key(store.prefix, head.seq)
    document: dict[str, Any] = {
        "format": FORMAT,
        "event_count": ledger.event_count(),
        "last_seq": head.seq,
        "last_hash": head.hash,
        "written_at": format_time(now),
        "tool_version": __version__,
        "bucket": store.bucket,
        "prefix": store.prefix,
        "database": ledger.engine.dialect.name,
        "verified_from_seq": verified_from,
        "previous": None
        if anchor is None
        else {"key": anchor.key, "last_seq": anchor.last_seq, "last_hash": anchor.last_hash},
    }
    body = (json.dumps(document, sort_keys=True, indent=2) + "\n").encode("utf-8")
    written = _put_once(store, key, body, now)
    if written is None:  # the key exists: the same head checkpointed before, or a rewrite
        existing = read_checkpoint(store, key)
        if (existing.last_seq, existing.last_hash) != (head.seq, head.hash):
            raise ChainBroken(
                f"checkpoint {key} in the bucket says event {existing.last_seq} has hash "
                f"{existing.last_hash}, but the ledger's event {head.seq} has {head.hash}: "
                "the ledger's history was rewritten",
                event_id=head.seq,
            )
        checkpoint = _with(existing, already_written=True)
    else:
        version_id, lock_mode, retain_until = written
        checkpoint = _from_document(
            key, document, hashlib.sha256(body).hexdigest(), version_id, lock_mode, retain_until
        )
    (event,) = ledger.append_events(
        [
            NewEvent(
                None,
                CHECKPOINT_EVENT,
                {
                    "key": key,
                    "version_id": checkpoint.version_id,
                    "last_seq": checkpoint.last_seq,
                    "last_hash": checkpoint.last_hash,
                    "event_count": checkpoint.event_count,
                    "sha256": checkpoint.sha256,
                    "lock_mode": checkpoint.lock_mode,
                    "retain_until": iso(checkpoint.retain_until),
                    "already_written": checkpoint.already_written,
                    "log_checkpoint": logged.key,
                    "log_size": logged.checkpoint.size,
                    "log_root": logged.checkpoint.root_b64,
                    "log_signed": logged.checkpoint.signed,
                    **_witnessed(logged.witness),
                },
            )
        ],
        actor=actor,
    )
    record_fork(ledger, logged.witness, actor=actor)
    return _with(checkpoint, event_hash=event, witness=logged.witness)


def _witnessed(report: WitnessReport | None) -> dict[str, Any]:
    if report is None:
        return {}
    return {"log_witnessed": report.satisfied, "log_cosigned_by": sorted(report.witnessed)}


def record_fork(ledger: Ledger, report: WitnessReport | None, *, actor: str | None) -> None:
    """A ``log_forked`` custody event when a witness refused the log's history."""
    message = report.fork_message() if report is not None else None
    if report is None or message is None:
        return
    ledger.append_events(
        [
            NewEvent(
                None,
                LOG_FORKED_EVENT,
                {
                    "log_size": report.size,
                    "witnesses": dict(sorted(report.forked.items())),
                    "message": message,
                },
            )
        ],
        actor=actor,
    )


def _verify_segment(
    ledger: Ledger, anchor: Checkpoint | None, head_seq: int, head_hash: str
) -> int:
    """Recompute the chain from ``anchor`` (or genesis) to the head; return where it started."""
    prev_seq, prev_hash = 0, GENESIS
    if anchor is not None:
        _require_event(ledger, anchor)
        prev_seq, prev_hash = anchor.last_seq, anchor.last_hash
    if head_seq < prev_seq:
        raise ChainBroken(
            f"the ledger's newest event is {head_seq}, but checkpoint "
            f"{anchor.key if anchor else ''} covers events up to {prev_seq}: events were deleted",
            event_id=head_seq,
        )
    start = prev_seq
    for row in ledger.iter_events(prev_seq, head_seq):
        seq = int(row["seq"])
        if seq != prev_seq + 1:
            raise ChainBroken(
                f"custody chain broken at event {seq}: expected sequence number {prev_seq + 1} "
                "(an event before it was deleted); refusing to checkpoint it",
                event_id=seq,
            )
        if row["prev_hash"] != prev_hash or event_hash(prev_hash, row) != row["hash"]:
            raise ChainBroken(
                f"custody chain broken at event {seq}: refusing to checkpoint it "
                "(run `tenios-archive audit verify-chain`)",
                event_id=seq,
            )
        prev_seq, prev_hash = seq, str(row["hash"])
    if (prev_seq, prev_hash) != (head_seq, head_hash):
        raise ChainBroken(
            f"custody chain ends at event {prev_seq}, not at the head {head_seq}",
            event_id=head_seq,
        )
    return start + 1


def _require_event(ledger: Ledger, checkpoint: Checkpoint) -> None:
    problem = ledger_problem(ledger, checkpoint)
    if problem is not None:
        raise ChainBroken(problem.message, event_id=checkpoint.last_seq)


def _put_once(
    store: ArchiveStore, key: str, body: bytes, now: datetime
) -> tuple[str | None, str | None, datetime | None] | None:
    """PUT ``body`` at ``key`` unless another checkpoint is there (None then).

    Returns (version id, lock mode, retain-until) as the bucket reports them.
    """
    try:
        version_id = store.put_document(
            key, body, retain_until=_checkpoint_retain_until(store, now)
        )
    except ArchiveConflict:
        return None  # the caller reads that checkpoint and compares the chain heads
    info = store.head(key, version_id)
    if info is None:
        raise VerificationFailed(
            f"checkpoint {key} vanished right after it was written", s3_key=key
        )
    return version_id, info.lock_mode, info.retain_until


def _checkpoint_retain_until(store: ArchiveStore, now: datetime) -> datetime | None:
    """Now + the store's retention period, unless the store applies no retention.

    The store locks the checkpoint until then where its bucket has Object Lock.
    """
    if store.retention_mode == "none" or store.retention_days <= 0:
        return None
    return now.astimezone(UTC) + timedelta(days=store.retention_days)


# -- reading ---------------------------------------------------------------------------------


def list_checkpoint_keys(store: ArchiveStore) -> list[str]:
    """Every checkpoint key in the bucket, oldest (lowest sequence number) first."""
    keys = [obj.key for obj in store.iter_objects(checkpoint_prefix(store.prefix))]
    return sorted(key for key in keys if key.endswith(".json"))


def read_checkpoint(store: ArchiveStore, key: str) -> Checkpoint:
    """Download and parse one checkpoint; VerificationFailed if it is not one."""
    buffer = io.BytesIO()
    store.download(key, buffer)
    body = buffer.getvalue()
    if len(body) > _MAX_DOCUMENT_BYTES:
        raise VerificationFailed(f"checkpoint {key} is too large to be one", s3_key=key)
    try:
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT!r} document")
        info = store.head(key)
        return _from_document(
            key,
            document,
            hashlib.sha256(body).hexdigest(),
            info.version_id if info else None,
            info.lock_mode if info else None,
            info.retain_until if info else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"checkpoint {key} is unreadable ({exc})", s3_key=key) from exc


def unchanged_since_checkpoint(ledger: Ledger, store: ArchiveStore) -> Checkpoint | None:
    """The newest checkpoint when the chain holds nothing after it but its own
    ``checkpoint`` event (None otherwise): a run that changed nothing need not write
    another checkpoint that only pins the previous one."""
    ledger.integrate_all()
    anchor = newest_checkpoint(store)
    if anchor is None:
        return None
    head = ledger.chain_head()
    if head.seq == anchor.last_seq:
        return anchor
    if head.seq != anchor.last_seq + 1:
        return None
    event = ledger.event_at(head.seq)
    if event is None or event["event"] != CHECKPOINT_EVENT:
        return None
    return anchor if json.loads(event["details"]).get("key") == anchor.key else None


def newest_checkpoint(store: ArchiveStore) -> Checkpoint | None:
    """The checkpoint with the highest sequence number, if any."""
    keys = list_checkpoint_keys(store)
    return read_checkpoint(store, keys[-1]) if keys else None


def _from_document(
    key: str,
    document: Mapping[str, Any],
    sha256: str,
    version_id: str | None,
    lock_mode: str | None,
    retain_until: datetime | None,
) -> Checkpoint:
    written = datetime.fromisoformat(str(document["written_at"]).replace("Z", "+00:00"))
    return Checkpoint(
        key=key,
        last_seq=int(document["last_seq"]),
        last_hash=str(document["last_hash"]),
        event_count=int(document["event_count"]),
        written_at=written,
        tool_version=str(document.get("tool_version", "")),
        sha256=sha256,
        version_id=version_id,
        lock_mode=lock_mode,
        retain_until=retain_until,
        previous=document.get("previous"),
    )


def _with(checkpoint: Checkpoint, **changes: Any) -> Checkpoint:
    return replace(checkpoint, **changes)


# -- checking --------------------------------------------------------------------------------


def check_checkpoints(ledger: Ledger, store: ArchiveStore) -> CheckpointReport:
    """Does the ledger still contain every checkpointed event, and the bucket every checkpoint?"""
    problems: list[CheckpointProblem] = []
    found: dict[str, Checkpoint] = {}
    for key in list_checkpoint_keys(store):
        try:
            checkpoint = read_checkpoint(store, key)
        except VerificationFailed as exc:
            problems.append(CheckpointProblem(key, "unreadable", str(exc)))
            continue
        found[key] = checkpoint
        problem = ledger_problem(ledger, checkpoint)
        if problem is not None:
            problems.append(problem)
    for event in ledger.events_named([CHECKPOINT_EVENT]):
        details = json.loads(event["details"])
        key = str(details.get("key"))
        if not key.startswith(checkpoint_prefix(store.prefix)):
            continue  # a checkpoint of another bucket / prefix
        pinned = found.get(key)
        if pinned is None:
            if not any(p.key == key for p in problems):
                problems.append(
                    CheckpointProblem(
                        key,
                        "object_missing",
                        f"custody event {event['seq']} records checkpoint {key}, but the "
                        "bucket no longer has it (deleted)",
                    )
                )
        elif details.get("sha256") and details["sha256"] != pinned.sha256:
            problems.append(
                CheckpointProblem(
                    key,
                    "object_altered",
                    f"checkpoint {key} has SHA-256 {pinned.sha256}, custody event "
                    f"{event['seq']} recorded {details['sha256']} (the object was replaced)",
                )
            )
    newest = max(found.values(), key=lambda c: c.last_seq, default=None)
    return CheckpointReport(len(found), newest, tuple(problems))


def ledger_problem(ledger: Ledger, checkpoint: Checkpoint) -> CheckpointProblem | None:
    """Why ``checkpoint`` contradicts the ledger (None when the ledger has its event)."""
    if (checkpoint.last_seq, checkpoint.last_hash) == (0, GENESIS):
        return None  # a checkpoint of the empty chain pins nothing
    event = ledger.event_at(checkpoint.last_seq)
    when = format_time(checkpoint.written_at)
    if event is None:
        return CheckpointProblem(
            checkpoint.key,
            "missing_event",
            f"checkpoint {checkpoint.key} (written {when}) pins event {checkpoint.last_seq} "
            f"with hash {checkpoint.last_hash}, but the ledger has no event "
            f"{checkpoint.last_seq}: events were deleted or the table truncated",
        )
    if event["hash"] != checkpoint.last_hash:
        return CheckpointProblem(
            checkpoint.key,
            "rewritten",
            f"checkpoint {checkpoint.key} (written {when}) pins event {checkpoint.last_seq} "
            f"with hash {checkpoint.last_hash}, but the ledger's event {checkpoint.last_seq} "
            f"has hash {event['hash']}: the ledger's history was rewritten",
        )
    return None
