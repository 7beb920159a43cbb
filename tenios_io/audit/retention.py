"""Retention and erasure: what is due, legal holds, and purging with evidence.

Rules, in the order :func:`purge_expired` applies them to each ``archived``
recording whose ``retain_until`` has passed (by the ledger's clock):

1. On legal hold in the ledger → refused (``purge_refused``, an expected refusal).
2. The archived version is HEADed: missing, on legal hold in S3, retained by S3
   beyond now, or not the size / SHA-256 the ledger recorded → refused; these
   mean the bucket and the ledger disagree, so the run reports a problem.
3. A ``purge_started`` event records the evidence, then the object version (and
   the ``.json`` sidecar an earlier version wrote beside it, if any) are deleted,
   then ``purged`` records it again with the outcome and the row moves to
   ``purged``.  A run interrupted after the delete finds
   ``purge_started`` as the recording's last event and finishes the record.
4. S3's own refusal (Object Lock still running, a hold) is recorded as
   ``purge_refused`` with S3's message.

Governance-mode retention is never bypassed: once retain-until has passed the
lock no longer applies and S3 (and moto) delete the version without
``BypassGovernanceRetention``; before that, S3 refuses, as it should.  Recordings
archived without retention (mode ``none``, no retain-until) are never "expired".

Nothing is deleted unless ``execute`` is true; otherwise the same checks run and
the result lists what would be deleted, and no custody event is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tenios_io.custody.chain import format_time
from tenios_io.custody.times import iso, parse_time
from tenios_io.exceptions import BucketNotUsable, StoreError, StoreUnavailable
from tenios_io.ledger import Ledger, Recording, State
from tenios_io.store import ArchiveStore, ObjectInfo, sidecar_key

DEFAULT_PURGE_REASON = "retention period ended"


# -- what is due -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionOverview:
    """Archived recordings whose retention has ended, and those ending soon."""

    now: datetime
    within_days: int
    expired: list[Recording]
    """retain_until at or before now (purge candidates, holds included)."""
    due: list[Recording]
    """retain_until within the next ``within_days`` days."""


def retention_overview(ledger: Ledger, *, within_days: int = 30) -> RetentionOverview:
    """Expired and soon-due archived recordings, soonest first."""
    now = ledger.now()
    ending = ledger.retention_ending(now + timedelta(days=within_days))
    expired = [r for r in ending if r.retain_until is not None and r.retain_until <= now]
    due = [r for r in ending if r.retain_until is not None and r.retain_until > now]
    return RetentionOverview(now, within_days, expired, due)


# -- legal holds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldResult:
    """What placing or releasing a legal hold on one recording did."""

    recording_uuid: str
    ok: bool
    message: str
    s3_key: str | None = None
    applied_in_s3: bool = False


def set_legal_hold(
    ledger: Ledger,
    store: ArchiveStore,
    recording_uuid: str,
    *,
    on: bool,
    reason: str,
    actor: str | None = None,
) -> HoldResult:
    """Place (``on``) or release a legal hold: S3 first, then the ledger and a custody event.

    An archived recording's object version (and the sidecar an earlier version wrote
    beside it, if any) get S3's legal hold
    (a tag on a bucket without Object Lock).  A recording not yet archived gets
    the hold in the ledger only; the archiver applies it when it uploads.
    Raises UnknownRecording for an unknown uuid.
    """
    if not reason.strip():
        raise ValueError("a legal hold needs a reason")
    rec = ledger.get(recording_uuid)
    key = rec.recording_uuid
    action = "placed" if on else "released"
    if rec.state is State.PURGED:
        return HoldResult(key, False, "purged: there is nothing left to hold", rec.s3_key)
    if rec.legal_hold == on:
        # Nothing to change: no S3 call and no second custody event for the same hold.
        already = "already on legal hold" if on else "not on legal hold"
        return HoldResult(key, True, f"{already}: nothing changed", rec.s3_key)
    details: dict[str, Any] = {"reason": reason, "on": on}
    applied = False
    if rec.state is State.ARCHIVED and rec.s3_key:
        try:
            store.set_legal_hold(rec.s3_key, rec.s3_version_id, on)
            side = store.head(sidecar_key(rec.s3_key))
            if side is not None:
                store.set_legal_hold(side.key, side.version_id, on)
        except StoreError as exc:
            return HoldResult(key, False, f"S3 refused: {exc}", rec.s3_key)
        applied = True
        details.update(key=rec.s3_key, version_id=rec.s3_version_id)
        if side is not None:
            details["sidecar_version_id"] = side.version_id
    details["applied_in_s3"] = applied
    ledger.annotate(
        key,
        "legal_hold" if on else "legal_hold_released",
        details,
        updates={"legal_hold": on},
        actor=actor,
    )
    where = "in S3 and the ledger" if applied else f"in the ledger (state {rec.state.value})"
    return HoldResult(key, True, f"legal hold {action} {where}", rec.s3_key, applied)


# -- purging ---------------------------------------------------------------------------------


class PurgeAction(StrEnum):
    """What happened to one purge candidate."""

    PURGED = "purged"
    WOULD_PURGE = "would_purge"
    REFUSED = "refused"
    FAILED = "failed"
    """Could not be tried now (S3 unavailable): nothing recorded, the next run tries again."""


@dataclass(frozen=True)
class PurgeResult:
    """One candidate's outcome; ``expected`` marks refusals that are policy (a legal hold)."""

    recording_uuid: str
    action: PurgeAction
    s3_key: str | None
    version_id: str | None
    reason: str
    size: int | None = None
    expected: bool = False


@dataclass
class PurgeReport:
    """Every candidate's outcome."""

    executed: bool
    results: list[PurgeResult] = field(default_factory=list)

    def of(self, action: PurgeAction) -> list[PurgeResult]:
        return [r for r in self.results if r.action is action]

    @property
    def problems(self) -> list[PurgeResult]:
        """Failures and refusals that mean the bucket and ledger disagree."""
        return [
            r
            for r in self.results
            if r.action is PurgeAction.FAILED
            or (r.action is PurgeAction.REFUSED and not r.expected)
        ]

    @property
    def ok(self) -> bool:
        return not self.problems


def purge_candidates(ledger: Ledger) -> list[Recording]:
    """Archived recordings whose retain_until has passed (by the ledger's clock)."""
    return ledger.retention_ending(ledger.now())


def purge_expired(
    ledger: Ledger,
    store: ArchiveStore,
    *,
    execute: bool,
    reason: str = DEFAULT_PURGE_REASON,
    actor: str | None = None,
    candidates: Iterable[Recording] | None = None,
    on_result: Callable[[PurgeResult], None] | None = None,
) -> PurgeReport:
    """Delete every expired, unheld recording's object (and an earlier version's sidecar),
    with evidence.

    ``execute=False`` is the dry run.  See the module docstring for the rules.
    """
    report = PurgeReport(executed=execute)
    actor = actor or ledger.actor
    for rec in purge_candidates(ledger) if candidates is None else candidates:
        result = _purge_one(ledger, store, rec, execute=execute, reason=reason, actor=actor)
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report


def _purge_one(
    ledger: Ledger,
    store: ArchiveStore,
    rec: Recording,
    *,
    execute: bool,
    reason: str,
    actor: str,
) -> PurgeResult:
    key, version = rec.s3_key, rec.s3_version_id
    evidence: dict[str, Any] = {
        "bucket": rec.s3_bucket,
        "key": key,
        "version_id": version,
        "sha256": rec.sha256,
        "size": rec.size_bytes,
        "retention_mode": rec.retention_mode,
        "retain_until": iso(rec.retain_until),
        "reason": reason,
        "by": actor,
    }

    def refuse(why: str, *, expected: bool = False) -> PurgeResult:
        if execute:
            ledger.annotate(
                rec.recording_uuid,
                "purge_refused",
                {**evidence, "refused_because": why},
                actor=actor,
            )
        return PurgeResult(
            rec.recording_uuid,
            PurgeAction.REFUSED,
            key,
            version,
            why,
            rec.size_bytes,
            expected,
        )

    if rec.legal_hold:
        return refuse("on legal hold (ledger)", expected=True)
    if not key or not rec.sha256:
        return refuse("the ledger row has no S3 key or SHA-256: nothing to prove the deletion by")
    if rec.s3_bucket and rec.s3_bucket != store.bucket:
        other = f"archived in bucket {rec.s3_bucket!r}; this purge works on {store.bucket!r}"
        return PurgeResult(rec.recording_uuid, PurgeAction.FAILED, key, version, other)
    try:
        info = _head_with_tags(store, key, version)
    except StoreUnavailable as exc:
        return PurgeResult(rec.recording_uuid, PurgeAction.FAILED, key, version, str(exc))
    if info is None:
        if execute and _purge_was_started(ledger, rec.recording_uuid):
            return _finish(ledger, store, rec, evidence, actor, resumed=True)
        return refuse("the archived version is not in the bucket (run `audit verify`)")
    objection = _s3_objection(rec, info, ledger.now())
    if objection is not None:
        return refuse(objection)
    if not execute:
        return PurgeResult(
            rec.recording_uuid,
            PurgeAction.WOULD_PURGE,
            key,
            version,
            reason,
            rec.size_bytes,
        )
    ledger.annotate(rec.recording_uuid, "purge_started", evidence, actor=actor)
    try:
        # "null" is S3's version id of an object in a bucket without versioning.
        store.delete_version(key, version or "null")
    except BucketNotUsable as exc:
        return refuse(f"S3 refused the deletion: {exc}")
    except StoreUnavailable as exc:
        return PurgeResult(rec.recording_uuid, PurgeAction.FAILED, key, version, str(exc))
    if store.head(key, version) is not None:  # never record a deletion S3 did not do
        return refuse("S3 accepted the deletion, but the version is still there")
    return _finish(ledger, store, rec, evidence, actor, resumed=False)


def _finish(
    ledger: Ledger,
    store: ArchiveStore,
    rec: Recording,
    evidence: dict[str, Any],
    actor: str,
    *,
    resumed: bool,
) -> PurgeResult:
    """The object version is gone: delete an earlier version's sidecar if there is one,
    record ``purged``, move the row."""
    assert rec.s3_key is not None
    side_key = sidecar_key(rec.s3_key)
    details: dict[str, Any] = {**evidence, "deleted_at": format_time(ledger.now())}
    if resumed:
        details["resumed"] = True
    try:
        side = store.head(side_key)
        if side is not None:  # written beside the object by versions before one write
            store.delete_version(side_key, side.version_id or "null")
            details.update(
                sidecar_key=side_key, sidecar_version_id=side.version_id, sidecar_deleted=True
            )
    except StoreError as exc:
        details.update(sidecar_key=side_key, sidecar_deleted=False, sidecar_error=str(exc))
    ledger.annotate(rec.recording_uuid, "purged", details, to_state=State.PURGED, actor=actor)
    note = (
        f" (its earlier version's sidecar was not deleted: {details['sidecar_error']})"
        if "sidecar_error" in details
        else ""
    )
    return PurgeResult(
        rec.recording_uuid,
        PurgeAction.PURGED,
        rec.s3_key,
        rec.s3_version_id,
        f"{evidence['reason']}{note}",
        rec.size_bytes,
    )


def _head_with_tags(store: ArchiveStore, key: str, version: str | None) -> ObjectInfo | None:
    info = store.head(key, version)
    if info is not None and info.lock_mode is None:
        info = store.head(key, version, with_tags=True)
    return info


def _s3_objection(rec: Recording, info: ObjectInfo, now: datetime) -> str | None:
    """Why S3's view of the version forbids purging it (None: nothing does)."""
    tags = info.tags or {}
    if info.legal_hold or tags.get("legal-hold") == "on":
        return "on legal hold in S3 (the ledger says it is not: run `audit verify`)"
    if info.lock_mode is not None and info.retain_until is not None and info.retain_until > now:
        return (
            f"S3 retains it ({info.lock_mode}) until {iso(info.retain_until)}, "
            f"later than the ledger's {iso(rec.retain_until)}"
        )
    tagged_until = parse_time(tags.get("retain-until"))
    if info.lock_mode is None and tagged_until is not None and tagged_until > now:
        return (
            f"the object's retain-until tag says {iso(tagged_until)}, later than the "
            f"ledger's {iso(rec.retain_until)}"
        )
    if info.size != rec.size_bytes or info.sha256 != rec.sha256:
        return (
            f"the version in S3 ({info.size} bytes, SHA-256 {info.sha256}) is not what the "
            f"ledger recorded ({rec.size_bytes} bytes, {rec.sha256}): not deleted, investigate"
        )
    return None


def _purge_was_started(ledger: Ledger, recording_uuid: str) -> bool:
    events = ledger.events(recording_uuid)
    return bool(events) and events[-1]["event"] == "purge_started"
