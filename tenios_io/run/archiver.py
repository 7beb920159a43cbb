"""Archiving one claimed recording: fetch → spool + SHA-256 → verified upload → ledger.

Before anything is uploaded, the spooled bytes must be the whole recording
(:mod:`tenios_io.recording.validation`): an error page on a 200 or a cut-short body is never
archived.  Every step is safe to repeat.  The S3 key is fixed by the ledger row, uploads
never overwrite (``If-None-Match: *``), and an object already holding the same
bytes counts as archived — so a crash anywhere, followed by a re-run, ends with
exactly one object per recording and a ledger that says so.  Nothing upstream (the
SFTP drop) is touched until the object has been verified by read-back.

One S3 write per recording: the object carries its custody facts (uuids, SHA-256,
size, source, fetch time, tool version, audio facts) as user metadata in the PUT
that writes it; earlier versions wrote a ``.json`` sidecar beside it as well.  Once a
batch's outcomes are in the ledger, one custody manifest names the batch's archived
recordings (tenios_io/publish/manifests.py); a crash before it loses nothing (the ledger
queued them, and the next run writes it).

Custody events per recording: ``claimed`` (at claim) → ``fetched``, ``uploaded``
(or ``found_archived`` after a crash), ``verified``, ``archived`` (one write, after
the read-back; written together with other recordings' outcomes in one
transaction) → ``release_intended`` then ``released_from_source`` (SFTP, optional,
after that write: tenios_io/sftp/release.py).  Failures end in ``retry_scheduled``,
``missing``, ``failed`` or ``conflict`` with the reason.  Bytes already archived
under another recording id add ``duplicate_content`` before ``archived``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from tenios_io import crashpoints
from tenios_io.custody.chain import format_time
from tenios_io.exceptions import (
    LedgerUnavailable,
    RecordingInvalid,
    SourceFileMissing,
    SourceUnavailable,
    StaleLease,
    TeniosArchiveError,
)
from tenios_io.ledger import Claim, LeasedWrite, Ledger, State
from tenios_io.progress import NO_PROGRESS, ProgressListener
from tenios_io.publish.manifests import write_batch_manifest
from tenios_io.recording.source import Fetched, FetchRequest, RecordingSource, Sink
from tenios_io.recording.spool import HashingSpool, Spooled, SpoolFiles
from tenios_io.recording.validation import AudioFacts, inspect_recording
from tenios_io.run.lease import BatchStarts, LeaseKeeper
from tenios_io.run.retry import Decision, RetryPolicy
from tenios_io.run.stop import RunGuard
from tenios_io.sftp.release import RELEASED, release_archived
from tenios_io.store import ArchivedObject
from tenios_io.store.keys import sidecar_key
from tenios_io.store.protocols import ArchiverStore

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How one recording's attempt ended in this run."""

    ARCHIVED = "archived"
    ALREADY_ARCHIVED = "already_archived"
    RETRY = "retry"
    MISSING = "missing"
    FAILED = "failed"
    CONFLICT = "conflict"
    LOST_LEASE = "lost_lease"
    RELEASED = "released"
    UNRELEASED = "unreleased"
    """The run stopped and the ledger did not take the claim back: ``in_progress``
    until its lease ends, then the next run takes it over."""


#: Outcomes that make a run exit 1 (README "Exit codes": failed or conflict in this run).
PROBLEMS = frozenset({Outcome.FAILED, Outcome.CONFLICT})
#: Outcomes whose recording is archived in the ledger now (and named in a manifest).
IN_MANIFEST = frozenset({Outcome.ARCHIVED, Outcome.ALREADY_ARCHIVED})


@dataclass(frozen=True)
class RecordingResult:
    """One recording's outcome in this run."""

    recording_uuid: str
    outcome: Outcome
    size: int = 0
    source: str | None = None
    s3_key: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    same_content_as: tuple[str, ...] = ()
    """Recordings already archived with exactly these bytes (``duplicate_content``)."""
    released: bool = False
    """Its drop file was released (moved or deleted) after the archive was verified."""


#: An outcome waits at most this long for others to be written with it (one ledger
#: transaction for many recordings; see Archiver.archive_batch).
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class _Worked:
    """A recording worked on, its ledger outcome not yet written."""

    result: RecordingResult
    write: LeasedWrite | None
    """None: nothing to write (the lease was lost)."""
    after: Callable[[], object] | None = None
    """What waits until the outcome is written (releasing the source copy)."""


class _CountingSink:
    """Passes writes to the spool and reports fetched bytes to the progress bar."""

    def __init__(self, inner: HashingSpool, progress: ProgressListener) -> None:
        self._inner = inner
        self._progress = progress
        self._reported = 0

    def write(self, data: bytes, /) -> int:
        n = self._inner.write(data)
        self._reported += n
        self._progress.bytes_fetched(n)
        return n

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._inner.seek(offset, whence)

    def truncate(self, size: int | None = None, /) -> int:
        if (size or 0) == 0 and self._reported:
            self._progress.bytes_fetched(-self._reported)
            self._reported = 0
        return self._inner.truncate(size)


class Archiver:
    """Everything ``archive_one`` needs, wired once per run.

    What it needs is a Protocol each: the store (:class:`ArchiverStore`: the upload,
    the manifests, late legal holds), the sources (:class:`RecordingSource`) and the
    progress listener; unit tests pass the fakes in :mod:`tenios_io.testing`.  The
    ledger is the real one (SQLite in unit tests): its fencing is what matters.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        store: ArchiverStore,
        sources: Sequence[RecordingSource],
        policy: RetryPolicy,
        lease_seconds: float,
        spool_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        guard: RunGuard | None = None,
        run_id: str | None = None,
        progress: ProgressListener = NO_PROGRESS,
        in_flight: int = 1,
    ) -> None:
        if not sources:
            raise ValueError("at least one recording source is needed")
        self.ledger = ledger
        self.store = store
        self.sources = list(sources)
        self.policy = policy
        self.lease_seconds = lease_seconds
        self.spool_dir = spool_dir
        self._spool_files = SpoolFiles(spool_dir)
        """Spool files kept between recordings (checksum.SpoolFiles); :meth:`close`."""
        self._clock = clock
        self.guard = guard or RunGuard()
        """Shared by every batch of the run: once tripped, claims are released unworked."""
        self.run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        """Names this run's custody manifests (``{run_id}-{batch}.jsonl``)."""
        self._batches = itertools.count(1)
        self._starts = BatchStarts()
        """Tells a batch's first start from a re-run (LeaseKeeper renews only on those)."""
        self.progress = progress
        """Told of bytes fetched and of each recording's outcome (the CLI's bar)."""
        self._recordings = (
            ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="recording")
            if in_flight > 1
            else None
        )
        """The run's recordings in the air: every batch of the process hands its claims
        to these ``in_flight`` threads (a bounded pool: blocking I/O per recording, the
        round trips of far-away peers overlapping), None: a batch works its claims in
        its own thread, one after another."""

    def close(self) -> None:
        """Delete the spool files kept for reuse (also done when the archiver is collected)
        and stop the recording threads (claims not started are left to their batches,
        which give them back, or to their leases)."""
        if self._recordings is not None:
            self._recordings.shutdown(wait=False, cancel_futures=True)
        self._spool_files.close()

    def archive_batch(
        self, claims: Sequence[Claim], *, deadline: float | None = None
    ) -> list[RecordingResult]:
        """Archive claimed recordings one after another, keeping their leases alive.

        Outcomes are written to the ledger in groups (:meth:`Ledger.write_outcomes`,
        one transaction each): a group is written once ``FLUSH_SECONDS`` have passed
        since work on its first recording started, so small recordings share a write
        while a recording that took longer is written as soon as it is done.  A crash
        before a group is written loses nothing: those recordings are still
        ``in_progress`` under leases that expire, and the next claim finds their
        objects already in the bucket.
        The source copy (SFTP) is released only after the ledger says ``archived``.
        Then the batch's custody manifest is written (:meth:`write_manifest`).

        Past ``deadline`` (this clock's seconds) the remaining claims are released
        unworked: pending again, due now, the attempt not counted.
        """
        with LeaseKeeper(self.ledger, claims, self.lease_seconds, starts=self._starts) as keeper:
            if self._recordings is None or len(claims) < 2:
                results = self._one_after_another(claims, keeper, deadline)
            else:
                results = self._side_by_side(self._recordings, claims, keeper, deadline)
        self.write_manifest(results)
        return results

    def _attempt(
        self, claim: Claim, keeper: LeaseKeeper, deadline: float | None
    ) -> _Worked | RecordingResult:
        """One claim of a batch as its turn comes: worked, or given back unworked (the run
        stopped, the time budget is spent), or LOST_LEASE (another worker has it)."""
        key = claim.recording_uuid
        if key in keeper.lost:
            keeper.done(key)
            return RecordingResult(key, Outcome.LOST_LEASE)
        stop = self.guard.stopped
        if stop is not None:
            return self._released(claim, f"run stopped: {stop.cause}")
        if deadline is not None and self._clock() >= deadline:
            return self._released(claim, "time budget spent")
        return self._work(claim)

    def _one_after_another(
        self, claims: Sequence[Claim], keeper: LeaseKeeper, deadline: float | None
    ) -> list[RecordingResult]:
        results: list[RecordingResult] = []
        unwritten: list[_Worked] = []
        first_started = 0.0
        for claim in claims:
            started = self._clock()
            attempt = self._attempt(claim, keeper, deadline)
            if isinstance(attempt, RecordingResult):
                results.append(attempt)
                continue
            if not unwritten:
                first_started = started
            unwritten.append(attempt)
            if self._clock() - first_started >= FLUSH_SECONDS:
                results.extend(self._write(unwritten, keeper))
                unwritten = []
        results.extend(self._write(unwritten, keeper))
        return results

    def _side_by_side(
        self,
        pool: ThreadPoolExecutor,
        claims: Sequence[Claim],
        keeper: LeaseKeeper,
        deadline: float | None,
    ) -> list[RecordingResult]:
        """The batch's claims on the run's recording threads; this thread writes their
        outcomes as they come, in groups (one transaction per ``FLUSH_SECONDS``), so the
        ledger sees one writer per batch as before.  A claim that has not started when
        the run stops is given back unworked, as in :meth:`_one_after_another`."""
        results: list[RecordingResult] = []
        unwritten: list[_Worked] = []
        first_done = 0.0
        pending: dict[Future[_Worked | RecordingResult], Claim] = {}
        for claim in claims:
            try:
                pending[pool.submit(self._attempt, claim, keeper, deadline)] = claim
            except RuntimeError:  # the pool is shut down (close()): the run is ending
                unwritten.append(self._released(claim, "the run ended before it started"))
        while pending:
            timeout = None
            if unwritten:
                timeout = max(0.0, first_done + FLUSH_SECONDS - self._clock())
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                claim = pending.pop(future)
                if future.cancelled():  # close() cancelled it: the run is ending
                    attempt: _Worked | RecordingResult = self._released(
                        claim, "the run ended before it started"
                    )
                else:
                    attempt = future.result()  # _work never raises for a recording's failure
                if isinstance(attempt, RecordingResult):
                    results.append(attempt)
                    continue
                if not unwritten:
                    first_done = self._clock()
                unwritten.append(attempt)
            if unwritten and self._clock() - first_done >= FLUSH_SECONDS:
                results.extend(self._write(unwritten, keeper))
                unwritten = []
        results.extend(self._write(unwritten, keeper))
        return results

    def write_manifest(self, results: Sequence[RecordingResult]) -> None:
        """The custody manifest of a batch's archived recordings, once their outcomes are
        in the ledger.  Never raises for S3 or the ledger: what is not written stays
        queued in the ledger, and the next run writes it."""
        archived = [r.recording_uuid for r in results if r.outcome in IN_MANIFEST]
        if not archived:
            return
        batch = f"{next(self._batches):06d}"
        try:
            write_batch_manifest(self.ledger, self.store, archived, run_id=self.run_id, batch=batch)
        except TeniosArchiveError as exc:
            log.warning(
                "custody manifest of batch %s-%s not written (%s): the ledger keeps its "
                "recordings queued and the next run writes it",
                self.run_id,
                batch,
                exc,
            )

    def archive_one(self, claim: Claim) -> RecordingResult:
        """Fetch, hash, upload, verify and record one claimed recording.

        Never raises for a recording's own failure: the ledger gets the verdict
        (retry later, missing, failed, conflict) and the result says which.
        """
        (result,) = self._write([self._work(claim)], None)
        self.write_manifest([result])
        return result

    def _write(
        self, worked: Sequence[_Worked], keeper: LeaseKeeper | None
    ) -> list[RecordingResult]:
        """Write worked recordings' outcomes in one transaction, then do what waits on
        them (releasing source copies)."""
        if not worked:
            return []
        writes = [w.write for w in worked if w.write is not None]
        try:
            written = self.ledger.write_outcomes(writes, apply_hold=self._apply_late_hold)
        except LedgerUnavailable as exc:
            # Run-wide (run/stop.py): nothing can be written; the leases expire and the next
            # run claims these again (objects already uploaded are found archived).
            # The run loop tries once more to give the claims back (run/loop.py).
            stop = self.guard.judge(exc)
            reason = f"run stopped: {stop.cause if stop else exc} (lease left to expire)"
            for item in worked:
                if keeper is not None:
                    keeper.done(item.result.recording_uuid)
            return [
                RecordingResult(w.result.recording_uuid, Outcome.UNRELEASED, reason=reason)
                for w in worked
            ]
        crashpoints.reached("after_record")
        results: list[RecordingResult] = []
        for item in worked:
            key = item.result.recording_uuid
            if keeper is not None:
                keeper.done(key)
            if item.write is not None and key in written.stale:
                log.warning("recording %s: lease lost before its outcome was written", key)
                results.append(RecordingResult(key, Outcome.LOST_LEASE, reason=item.result.reason))
                continue
            result = item.result
            if item.after is not None and item.after() == RELEASED:
                result = dataclasses.replace(result, released=True)
            results.append(result)
        return results

    def _apply_late_hold(self, write: LeasedWrite) -> dict[str, Any]:
        """A legal hold placed while the recording was in flight: put it on the object
        (and on a sidecar an earlier version wrote, if any) before the ledger says
        ``archived`` (called under the row lock)."""
        key, version = write.updates["s3_key"], write.updates["s3_version_id"]
        self.store.set_legal_hold(key, version, True)
        side = self.store.head(sidecar_key(key))
        if side is not None:
            self.store.set_legal_hold(side.key, side.version_id, True)
        return {"key": key, "version_id": version, "applied_in_s3": True}

    def _released(self, claim: Claim, reason: str, *, delay_seconds: float = 0.0) -> _Worked:
        write = self.ledger.released_write(
            claim.recording_uuid, claim.lease_token, reason, delay_seconds=delay_seconds
        )
        return _Worked(
            RecordingResult(claim.recording_uuid, Outcome.RELEASED, reason=reason), write
        )

    def _work(self, claim: Claim) -> _Worked:
        """Archive one claimed recording up to its (unwritten) ledger outcome."""
        started = self._clock()
        rec = claim.recording
        request = FetchRequest(rec.recording_uuid, rec.call_uuid, rec.source_path)
        try:
            worked = self._archive(claim, request)
            self.guard.succeeded(rec.recording_uuid, worked.result.source)
        except Exception as exc:  # noqa: BLE001 - every error becomes a ledger verdict
            worked = self._judge(claim, exc)
        result = dataclasses.replace(worked.result, seconds=self._clock() - started)
        self.progress.recording_done(result.outcome.value, result.size)
        return dataclasses.replace(worked, result=result)

    # -- the happy path --------------------------------------------------------------------

    def _archive(self, claim: Claim, request: FetchRequest) -> _Worked:
        rec = claim.recording
        token = claim.lease_token
        with self._spool_files.spool() as spool:
            source, fetched = self._fetch(request, _CountingSink(spool, self.progress))
            spooled = spool.finish()
            audio = _validate(spooled, fetched, rec.recording_uuid)
            fetched_at = self.ledger.now()
            crashpoints.reached("after_fetch")
            # The hold as claimed; one placed while the recording is in flight is applied
            # when its outcome is written, under the row lock (_apply_late_hold).
            obj = self.store.archive(
                spooled,
                recording_uuid=rec.recording_uuid,
                call_uuid=rec.call_uuid,
                source=fetched.source,
                key_date=rec.key_date.date(),
                legal_hold=rec.legal_hold,
                audio_metadata=audio.as_metadata(),
                fetched_at=format_time(fetched_at),
            )
        crashpoints.reached("after_upload")
        # The same bytes under another id (a 200 carrying another recording's audio):
        # recorded now, not weeks later by a reconcile.  Still archived — the bytes are
        # what TENIOS answered for this id, and two ids of one call can truly share
        # them — but flagged: the event, the run's summary and the report name both.
        same = self.ledger.archived_with_sha256(obj.sha256, excluding=rec.recording_uuid)
        archived_at = self.ledger.now()
        write = self.ledger.completed_write(
            rec.recording_uuid,
            token,
            {
                "source": fetched.source,
                "content_type": obj.content_type,
                "size_bytes": obj.size,
                "sha256": obj.sha256,
                "s3_bucket": obj.bucket,
                "s3_key": obj.key,
                "s3_version_id": obj.version_id,
                "retention_mode": obj.retention_mode,
                "retain_until": obj.retain_until,
                "fetched_at": fetched_at,
                "archived_at": archived_at,
                "last_verified_at": archived_at,
                **audio.as_columns(),
            },
            [
                (
                    "fetched",
                    {**_fetched_details(fetched, spooled, fetched_at), **audio.as_columns()},
                ),
                (
                    "found_archived" if obj.already_archived else "uploaded",
                    _object_details(obj),
                ),
                ("verified", {"method": "read-back", "sha256": obj.sha256, "size": obj.size}),
                *(
                    [("duplicate_content", {"sha256": obj.sha256, "also_archived_as": same})]
                    if same
                    else []
                ),
            ],
            at=archived_at,
            object_hold=obj.legal_hold,
        )
        outcome = Outcome.ALREADY_ARCHIVED if obj.already_archived else Outcome.ARCHIVED
        return _Worked(
            RecordingResult(
                rec.recording_uuid,
                outcome,
                size=obj.size,
                source=fetched.source,
                s3_key=obj.key,
                same_content_as=tuple(same),
            ),
            write,
            after=functools.partial(
                release_archived, self.ledger, source, request, fetched, sha256=obj.sha256
            ),
        )

    def _fetch(self, request: FetchRequest, sink: Sink) -> tuple[RecordingSource, Fetched]:
        """The first source that has the recording, in the configured order."""
        candidates: list[RecordingSource] = []
        unavailable: SourceUnavailable | None = None
        for source in self.sources:
            try:
                if source.can_fetch(request):
                    candidates.append(source)
            except SourceUnavailable as exc:  # e.g. the SFTP server is down: try the next
                log.info(
                    "recording %s: %s unavailable (%s)", request.recording_uuid, source.name, exc
                )
                unavailable = exc
        if not candidates:
            raise unavailable or SourceUnavailable(
                f"recording {request.recording_uuid}: no configured source can fetch it now",
                recording_uuid=request.recording_uuid,
            )
        for index, source in enumerate(candidates):
            try:
                return source, source.fetch(request, sink)
            except SourceFileMissing:
                if index == len(candidates) - 1:
                    raise
                sink.seek(0)
                sink.truncate()
                log.info(
                    "recording %s: not at %s, trying the next source",
                    request.recording_uuid,
                    source.name,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    # -- failures --------------------------------------------------------------------------

    def _judge(self, claim: Claim, exc: Exception) -> _Worked:
        """A run-wide error stops the run and gives the claim back without spending the
        attempt (run/stop.py); any other is this recording's failure (retry.py)."""
        stop = self.guard.judge(exc)
        if stop is None:
            held = self.guard.hold_back(claim.recording_uuid, exc)
            if held is not None:  # S3 failing for everyone: not this recording's attempt
                log.warning("recording %s: held back %.0f s: %s", claim.recording_uuid, held, exc)
                return self._released(claim, f"held back while S3 fails: {exc}", delay_seconds=held)
            return self._failure(claim, exc)
        log.warning("recording %s: %s", claim.recording_uuid, stop.message)
        return self._released(claim, f"run stopped: {stop.cause}")

    def _failure(self, claim: Claim, exc: Exception) -> _Worked:
        rec = claim.recording
        verdict = self.policy.judge(
            exc, attempts=rec.attempts, discovered_at=rec.discovered_at, now=self.ledger.now()
        )
        if not isinstance(exc, StaleLease) and not _is_ours(exc):
            log.warning("recording %s: unexpected error", rec.recording_uuid, exc_info=exc)
        key = rec.recording_uuid
        result = RecordingResult(key, Outcome(verdict.decision.value), reason=verdict.reason)
        if verdict.decision is Decision.LOST_LEASE:
            return _Worked(result, None)
        if verdict.decision is Decision.RETRY:
            write = self.ledger.retry_write(
                key, claim.lease_token, verdict.reason, delay_seconds=verdict.delay_seconds
            )
        else:
            write = self.ledger.failed_write(
                key,
                claim.lease_token,
                verdict.reason,
                state=State(verdict.decision.value),
                details=_error_details(exc),
            )
        return _Worked(result, write)


def _validate(spooled: Spooled, fetched: Fetched, recording_uuid: str) -> AudioFacts:
    """The recording's audio facts, or RecordingInvalid (transient) saying why the bytes
    are not the whole recording: retried from the API, left in the drop as not stable yet."""
    try:
        return inspect_recording(spooled.path, spooled.size, fetched.declared_size)
    except RecordingInvalid as exc:
        if fetched.source.startswith("sftp:"):
            where = f"SFTP file {fetched.source[5:]} is not stable yet (left in the drop)"
        else:
            where = f"TENIOS did not deliver the whole recording {recording_uuid}"
        raise RecordingInvalid(f"{where}: {exc}", recording_uuid=recording_uuid) from None


def _is_ours(exc: BaseException) -> bool:
    return isinstance(exc, TeniosArchiveError)


def _error_details(exc: BaseException) -> dict[str, Any]:
    details: dict[str, Any] = {"error_type": type(exc).__name__}
    for attr in ("s3_key", "expected_sha256", "found_sha256", "status_code", "fields"):
        value = getattr(exc, attr, None)
        if value is not None:
            details[attr] = value
    return details


def _fetched_details(fetched: Fetched, spooled: Spooled, fetched_at: Any) -> dict[str, Any]:
    return {
        "source": fetched.source,
        "size": spooled.size,
        "sha256": spooled.sha256,
        "content_type": spooled.content_type,
        "declared_content_type": fetched.content_type,
        "fetched_at": format_time(fetched_at),
    }


def _object_details(obj: ArchivedObject) -> dict[str, Any]:
    return {
        "bucket": obj.bucket,
        "key": obj.key,
        "version_id": obj.version_id,
        "sha256": obj.sha256,
        "size": obj.size,
        "retention_mode": obj.retention_mode,
        "retain_until": format_time(obj.retain_until) if obj.retain_until else None,
        "retention_enforced": obj.retention_enforced,
        "legal_hold": obj.legal_hold,
    }
