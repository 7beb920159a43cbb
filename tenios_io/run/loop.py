"""One archival run's loop and bookkeeping: the sliding window over claimed batches,
waiting for retries, the summary.

The executor is the caller's (a Prefect task runner in the flows, a thread pool in the
CLI's in-process runs); nothing here imports Prefect, so it is tested plainly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tenios_io.exceptions import LedgerUnavailable
from tenios_io.ledger import Claim, Ledger, utc_now
from tenios_io.run.archiver import PROBLEMS, Archiver, Outcome, RecordingResult
from tenios_io.run.interrupt import Interruption
from tenios_io.run.options import RunOptions
from tenios_io.run.stop import EXIT_PROBLEMS, RunStop, record_stop

log = logging.getLogger(__name__)

_SHORT = 200


#: The producers' intake is drained before claiming, at most this often while batches
#: are in flight (always when none is): what other systems inserted is claimable soon.
DRAIN_EVERY_SECONDS = 1.0
#: The sequencer gets a turn after claiming at most this often while batches are in
#: flight: each turn is a write transaction of its own, and the events wait safely in
#: the custody queue meanwhile (manifests read them there; the checkpoint integrates all).
INTEGRATE_EVERY_SECONDS = 1.0
#: How often the loop looks at its interruption's flags while batches are in flight.
POLL_SECONDS = 0.2


class BatchNotStarted(Exception):
    """The caller's runner refused to start a claimed batch (a Prefect flow run being
    cancelled aborts its new tasks).  The run stops as it does on a run-wide failure:
    the batch's claims are given back at once without spending an attempt (had it
    written an outcome, the ledger fences the release), nothing more is claimed."""


def not_started_stop(exc: BatchNotStarted) -> RunStop:
    """The stop a refused batch causes."""
    return RunStop(
        "the run's batches were refused (its flow run is being cancelled)",
        "Run it again to continue",
        EXIT_PROBLEMS,
        f"{type(exc).__name__}: {exc}",
    )


@dataclass
class LookAgain:
    """A second look at the SFTP drop at ``at`` (the loop's clock): files the first sweep
    saw settling are settled by then (run/session.py).  The loop takes it before
    claiming once ``at`` has come, and waits for it rather than end before it."""

    at: float
    step: Callable[[], LookAgain | None]
    """Sweeps again (registers what settled; its errors are its own to report); returns
    the next look, if files are settling again."""


Submit = Callable[[Archiver, list[Claim], float | None], Future[list[RecordingResult]]]
"""How the caller runs one claimed batch: ``submit(archiver, claims, deadline)`` returns a
future of its results (the flows submit a Prefect task, the CLI uses a thread pool).
A future that fails with :class:`BatchNotStarted` gets its claims given back."""


def archive_until_done(
    ledger: Ledger,
    archiver: Archiver,
    submit: Submit,
    *,
    owner: str,
    limit: int | None,
    concurrency: int,
    batch_size: int,
    lease_seconds: float,
    max_attempts: int | None,
    time_budget_minutes: float | None,
    max_wait_seconds: float,
    interruption: Interruption | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunSummary:
    """Archive claimed batches through a sliding window until nothing is left to do.

    Up to ``concurrency`` batches are in flight; a new batch is claimed as soon as any
    one finishes (not when a whole round has).  Claiming stops when nothing is
    claimable (after waiting up to ``max_wait_seconds`` for retries about to become
    due), ``limit`` recordings were claimed, the time budget is spent, a run-wide
    failure tripped the archiver's guard (run/stop.py), or a signal came
    (``interruption``: it stops the run the same way); the batches in flight then
    finish, releasing what they did not start.  When the interruption says abort (a
    second signal, or the grace ran out) every claim still in flight is given back at
    once and the loop returns without waiting for its batches (``cut_short``).
    Returns the run's summary (stopped: the cause, recorded as one ``run_stopped``
    event).
    """
    options = RunOptions(
        concurrency=concurrency,
        batch_size=batch_size,
        limit=limit,
        time_budget_minutes=time_budget_minutes,
        max_wait_seconds=max_wait_seconds,
    )
    loop = RunLoop(
        ledger,
        archiver,
        submit,
        owner=owner,
        options=options,
        lease_seconds=lease_seconds,
        max_attempts=max_attempts,
        interruption=interruption,
        clock=clock,
    )
    return loop.run()


class RunLoop:
    """One run's sliding window over claimed batches (:func:`archive_until_done`).

    Its steps, in the order :meth:`run` takes them: :meth:`drain_intake` (what
    producers handed over becomes claimable), :meth:`claim` (a batch for every free
    slot, each submitted at once), :meth:`integrate` (the custody sequencer's turn),
    :meth:`collect` (the results of the batches that finished; a second signal gives
    the rest back), :meth:`wait_for_retries` (when nothing is due but retries soon
    are), and :meth:`finish` (the summary, and the ``run_stopped`` event of a run that
    stopped).  :meth:`may_claim` says whether the run still takes new work.
    """

    def __init__(
        self,
        ledger: Ledger,
        archiver: Archiver,
        submit: Submit,
        *,
        owner: str,
        options: RunOptions,
        lease_seconds: float,
        max_attempts: int | None,
        interruption: Interruption | None = None,
        clock: Callable[[], float] = time.monotonic,
        look_again: LookAgain | None = None,
    ) -> None:
        self.ledger = ledger
        self.archiver = archiver
        self.look_again = look_again
        self.submit = submit
        self.owner = owner
        self.options = options
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.interruption = interruption
        self.clock = clock
        self.summary = RunSummary(started_at=utc_now())
        self.stop = interruption.stop if interruption is not None else threading.Event()
        self.poll = None if interruption is None else POLL_SECONDS
        budget = options.time_budget_minutes
        self.deadline = clock() + budget * 60 if budget else None
        self.remaining = options.limit
        self.inflight: dict[Future[list[RecordingResult]], list[Claim]] = {}
        self.drained_at: float | None = None
        self.integrated_at: float | None = None

    def run(self) -> RunSummary:
        """Claim, submit and collect until nothing is left to do; the run's summary."""
        if self.interruption is not None:
            self.interruption.looping = True
        try:
            while True:
                exhausted = False
                self.look_again_if_due()
                if self.has_free_slot() and self.may_claim():
                    if not self.drain_intake():
                        continue  # wait for the batches in flight, then stop
                    exhausted = self.claim()
                if self.inflight:
                    if not self.collect():
                        break  # cut short: the claims in flight were given back
                    continue
                if not exhausted or self.remaining == 0:
                    break
                if not self.wait_for_retries() and not self.wait_to_look_again():
                    break
        finally:
            if self.interruption is not None:
                self.interruption.looping = False
        return self.finish()

    def has_free_slot(self) -> bool:
        """Fewer batches in flight than the run keeps (RunOptions.batches: its
        concurrency, or enough to feed the recordings in flight)."""
        return len(self.inflight) < self.options.batches

    def signalled(self) -> None:
        """A signal that came stops the run as a run-wide failure does (once)."""
        interruption = self.interruption
        if interruption is not None and interruption.signal is not None:
            if self.archiver.guard.stopped is None:
                self.archiver.guard.trip(interruption.run_stop())
                interruption.stopping(len(self.inflight))

    def may_claim(self) -> bool:
        """The run still takes new work: under its limit and time budget, not stopped
        by a run-wide failure or a signal."""
        self.signalled()
        return (
            (self.remaining is None or self.remaining > 0)
            and self.archiver.guard.stopped is None
            and not self.stop.is_set()
            and (self.deadline is None or self.clock() < self.deadline)
        )

    def ledger_gone(self, exc: LedgerUnavailable) -> None:
        """One of the loop's own ledger steps (intake, claim, the wait for retries) got
        no answer: the run stops as a ledger failure in a batch stops it (run/stop.py):
        nothing more is claimed, the batches in flight finish, the summary says why.  A
        claim whose commit was cut off is not lost: its leases expire and the next run
        takes the recordings over."""
        self.archiver.guard.judge(exc)

    def drain_intake(self) -> bool:
        """Register what producers handed over, before claiming: always when no batch is
        in flight, else at most every :data:`DRAIN_EVERY_SECONDS`.  False when the
        ledger did not answer (the run stops)."""
        if (
            self.inflight
            and self.drained_at is not None
            and self.clock() - self.drained_at < DRAIN_EVERY_SECONDS
        ):
            return True
        try:
            self.ledger.drain_intake(actor=self.owner)
        except LedgerUnavailable as exc:
            self.ledger_gone(exc)
            return False
        self.drained_at = self.clock()
        return True

    def claim(self) -> bool:
        """Claim a batch for every free slot (one claim, one transaction, for all of
        them), submit each at once, then give the sequencer its turn.  True when
        nothing more is due right now (a claim came back short)."""
        claimed = exhausted = False
        while self.has_free_slot() and self.may_claim():
            free = self.options.batches - len(self.inflight)
            size = free * self.options.batch_size
            size = size if self.remaining is None else min(size, self.remaining)
            try:
                claims = self.ledger.claim_batch(
                    size,
                    lease_seconds=self.lease_seconds,
                    owner=self.owner,
                    max_attempts=self.max_attempts,
                    integrate=False,
                )
            except LedgerUnavailable as exc:
                self.ledger_gone(exc)
                break
            for batch in split_claims(claims, free, self.options.batch_size):
                self.inflight[self.submit(self.archiver, batch, self.deadline)] = batch
            if self.remaining is not None:
                self.remaining -= len(claims)
            claimed = claimed or bool(claims)
            if len(claims) < size:
                exhausted = True
                break
        if claimed:
            self.integrate()
        return exhausted

    def integrate(self) -> None:
        """The sequencer's turn, at most every :data:`INTEGRATE_EVERY_SECONDS`.  Not the
        run's work: a turn whose connection is cut is skipped, its events stay queued
        (the turn is one transaction) for the next turn or the checkpoint.  A ledger
        that is really down fails the batches' own writes, which stop the run the way
        a ledger failure does."""
        if (
            self.integrated_at is not None
            and self.clock() - self.integrated_at < INTEGRATE_EVERY_SECONDS
        ):
            return
        try:
            self.ledger.integrate()
        except LedgerUnavailable as exc:
            log.warning("sequencer turn skipped: %s", exc)
        self.integrated_at = self.clock()

    def collect(self) -> bool:
        """Wait for a batch in flight to finish and count its results.  False when the
        interruption says abort: every claim still in flight is given back at once and
        the run returns without waiting for its batches (``cut_short``)."""
        done, _ = wait(self.inflight, timeout=self.poll, return_when=FIRST_COMPLETED)
        for future in done:
            batch = self.inflight.pop(future)
            self.summary.add(_results(self.ledger, self.archiver, batch, future))
        self.signalled()  # at once, not when a batch next finishes
        interruption = self.interruption
        if interruption is not None and interruption.abort and self.inflight:
            interruption.giving_back(sum(len(b) for b in self.inflight.values()))
            self.summary.add(give_back(self.ledger, self.inflight, interruption.run_stop().cause))
            self.summary.cut_short = True
            return False
        return True

    def look_again_if_due(self) -> None:
        """The drop's second look, once its time has come (and the run still works)."""
        again = self.look_again
        if again is None or self.clock() < again.at:
            return
        self.look_again = None
        if self.may_claim():
            self.look_again = again.step()

    def wait_to_look_again(self) -> bool:
        """Nothing is due: wait for the drop's second look if one is ahead (and before
        the deadline).  False when there is none: the run ends."""
        again = self.look_again
        if again is None or not self.may_claim():
            return False
        left = again.at - self.clock()
        if self.deadline is not None and self.clock() + left >= self.deadline:
            self.look_again = None
            return False
        if left > 0:
            self.stop.wait(left)
        return not self.stop.is_set()

    def wait_for_retries(self) -> bool:
        """Nothing is due: wait up to ``max_wait_seconds`` for retries about to become
        due.  False when none will be (or the ledger did not answer): the run ends."""
        horizon = self.options.max_wait_seconds
        if self.look_again is not None:  # a retry due after the second look waits for it
            horizon = min(horizon, max(0.0, self.look_again.at - self.clock()))
        try:
            return wait_for_due(
                self.ledger,
                horizon_seconds=horizon,
                deadline=self.deadline,
                clock=self.clock,
                stop=self.stop,
            )
        except LedgerUnavailable as exc:
            self.ledger_gone(exc)
            return False

    def finish(self) -> RunSummary:
        """The run's summary; a run that stopped records why as one ``run_stopped`` event."""
        summary = self.summary
        summary.stopped = self.archiver.guard.stopped
        summary.notes = list(self.archiver.guard.notes)
        if summary.unreleased:
            summary.lease_ends_by = utc_now() + timedelta(seconds=self.lease_seconds)
        if summary.stopped is not None:
            record_stop(
                self.ledger,
                summary.stopped,
                released=summary.counts["released"],
                unreleased=summary.unreleased,
                lease_ends_by=summary.lease_ends_by,
            )
        summary.finish()
        return summary


def split_claims(claims: list[Claim], slots: int, batch_size: int) -> list[list[Claim]]:
    """``claims`` (at most ``slots * batch_size``) as batches of ``batch_size`` in claim
    order, the last one short if need be (a batch is what ``--batch-size`` says)."""
    if len(claims) > slots * batch_size:
        raise ValueError("more claims than the free slots take")
    return [claims[i : i + batch_size] for i in range(0, len(claims), batch_size)]


def give_back(
    ledger: Ledger, inflight: dict[Future[list[RecordingResult]], list[Claim]], reason: str
) -> list[RecordingResult]:
    """Release every claim of the batches in flight at once, without waiting for them:
    pending, due now, the attempt not counted.  A claim whose outcome its batch already
    wrote is left as written (the ledger fences it); so is the outcome a batch writes
    later (its lease is gone).  An object already uploaded is found archived by the next
    run.  Returns the released recordings."""
    claims = []
    for future, batch in inflight.items():
        future.cancel()
        claims.extend(batch)
    inflight.clear()
    return release_claims(ledger, claims, f"run stopped: {reason} (given back at once)")


def release_claims(ledger: Ledger, claims: list[Claim], reason: str) -> list[RecordingResult]:
    """Give ``claims`` back (pending, due now, no attempt spent); those the ledger
    fences (their outcome is written, or the lease is gone) are left as they are.
    Returns the released recordings (``unreleased`` when the ledger is unavailable:
    their leases expire and the next run takes them over)."""
    try:
        written = ledger.write_outcomes(
            [ledger.released_write(c.recording_uuid, c.lease_token, reason) for c in claims]
        )
    except LedgerUnavailable:
        why = f"{reason} (the ledger did not answer: lease left to expire)"
        return [RecordingResult(c.recording_uuid, Outcome.UNRELEASED, reason=why) for c in claims]
    return [
        RecordingResult(c.recording_uuid, Outcome.RELEASED, reason=reason)
        for c in claims
        if c.recording_uuid not in written.stale
    ]


def _results(
    ledger: Ledger, archiver: Archiver, batch: list[Claim], future: Future[list[RecordingResult]]
) -> list[RecordingResult]:
    try:
        results = future.result()
    except BatchNotStarted as exc:
        stop = archiver.guard.trip(not_started_stop(exc))
        return release_claims(ledger, batch, f"run stopped: {stop.cause}")
    except Exception as exc:  # noqa: BLE001 - a batch that crashed as a whole
        # Even after its retries: its leases expire and the recordings are claimed again
        # next run; this run reports them as failed.
        reason = f"batch crashed: {exc}; retried after the lease expires"
        return [RecordingResult(c.recording_uuid, Outcome.FAILED, reason=reason) for c in batch]
    return retry_release(ledger, batch, results)


def retry_release(
    ledger: Ledger, batch: list[Claim], results: list[RecordingResult]
) -> list[RecordingResult]:
    """Give back, once more, the claims the batch could not (the ledger did not answer
    its write): released now if the ledger answers again (it restarted), else they stay
    ``unreleased`` — in_progress until their lease ends."""
    left = {r.recording_uuid for r in results if r.outcome is Outcome.UNRELEASED}
    if not left:
        return results
    claims = [c for c in batch if c.recording_uuid in left]
    reason = next(r.reason for r in results if r.outcome is Outcome.UNRELEASED) or ""
    again = {
        r.recording_uuid: r
        for r in release_claims(ledger, claims, reason.replace(" (lease left to expire)", ""))
    }
    return [again.get(r.recording_uuid, r) if r.recording_uuid in left else r for r in results]


def wait_for_due(
    ledger: Ledger,
    *,
    horizon_seconds: float,
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
) -> bool:
    """If something becomes claimable within the horizon (and before the deadline),
    wait until then and return True; otherwise return False at once."""
    due = ledger.next_due_at()
    if due is None:
        return False
    wait = max(0.0, (due - ledger.clock_now()).total_seconds()) + 0.05
    if wait > horizon_seconds or (deadline is not None and clock() + wait >= deadline):
        return False
    (stop or threading.Event()).wait(wait)
    return True


@dataclass
class RunSummary:
    """What a run did: per outcome counts, bytes, throughput, failures with reasons."""

    started_at: datetime
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    per_source: Counter[str] = field(default_factory=Counter)
    bytes_archived: int = 0
    problems: list[RecordingResult] = field(default_factory=list)
    finished: float | None = None
    stopped: RunStop | None = None
    """Set when a run-wide failure or a signal stopped the run early (run/stop.py)."""
    cut_short: bool = False
    """The run gave back the claims in flight and did not wait for their batches."""
    unreleased: list[str] = field(default_factory=list)
    """Claims the run could not give back (the ledger did not answer): in_progress
    until their lease ends (``lease_ends_by`` at the latest)."""
    lease_ends_by: datetime | None = None
    notes: list[str] = field(default_factory=list)
    """What the run met that did not stop it (a 404 streak the canary answered)."""
    duplicate_content: list[RecordingResult] = field(default_factory=list)
    """Archived with bytes already archived under another id (flagged, not refused)."""
    repeats: int = 0
    """Results of recordings already counted in this run (retried, then tried again):
    ``recordings`` counts recordings, ``processed`` attempts."""
    retry_reasons: Counter[str] = field(default_factory=Counter)
    """Why recordings were left for a later try, by kind ("not ready yet (404)", the
    error's class): the summary names them."""
    released_from_drop: int = 0
    """Drop files released (moved or deleted) after their archive was verified."""
    _retrying: set[str] = field(default_factory=set, repr=False)
    """Recordings whose latest result here is a retry (bounded by what is waiting)."""

    def add(self, results: Iterable[RecordingResult]) -> None:
        for result in results:
            self.counts[result.outcome.value] += 1
            if result.same_content_as:
                self.duplicate_content.append(result)
            key = result.recording_uuid
            if key in self._retrying:
                self.repeats += 1
                self._retrying.discard(key)
            if result.outcome is Outcome.RETRY:
                self._retrying.add(key)
                self.retry_reasons[(result.reason or "unknown").split(":", 1)[0]] += 1
            if result.released:
                self.released_from_drop += 1
            if result.outcome in (Outcome.ARCHIVED, Outcome.ALREADY_ARCHIVED):
                self.per_source[_source_kind(result.source)] += 1
            if result.outcome is Outcome.ARCHIVED:
                self.bytes_archived += result.size
            if result.outcome in PROBLEMS or result.outcome is Outcome.MISSING:
                self.problems.append(result)
            if result.outcome is Outcome.UNRELEASED:
                self.unreleased.append(result.recording_uuid)

    @property
    def stop_message(self) -> str | None:
        """Why the run stopped and what became of its claims (None: it did not stop)."""
        if self.stopped is None:
            return None
        return self.stopped.message_for(
            self.unreleased, self.lease_ends_by, self.counts[Outcome.RELEASED.value]
        )

    def finish(self) -> None:
        self.finished = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def processed(self) -> int:
        """Attempts: a recording retried within the run counts once per try."""
        return sum(self.counts.values())

    @property
    def recordings(self) -> int:
        """Recordings this run worked on, each once however often it was tried."""
        return self.processed - self.repeats

    @property
    def exit_code(self) -> int:
        """The stop's code (2 configuration / credentials, 1 otherwise) when a run-wide
        failure stopped the run; else 0 when nothing ended failed or conflict, else 1."""
        if self.stopped is not None:
            return self.stopped.exit_code
        return 1 if any(self.counts[o.value] for o in PROBLEMS) else 0

    def table(self) -> list[dict[str, Any]]:
        """Rows for the summary table (artifact and CLI)."""
        secs = max(self.seconds, 1e-9)
        rows: list[dict[str, Any]] = [
            {"outcome": outcome.value, "recordings": self.counts[outcome.value]}
            for outcome in Outcome
            if self.counts[outcome.value]
        ]
        rows.append({"outcome": "total", "recordings": self.recordings})
        if self.processed != self.recordings:
            rows.append({"outcome": "attempts", "recordings": self.processed})
        for row in rows:
            row["bytes"] = self.bytes_archived if row["outcome"] in ("archived", "total") else ""
        if self.counts[Outcome.ARCHIVED.value]:  # no rate for a run that archived nothing
            rows.append(
                {
                    "outcome": "throughput",
                    "recordings": f"{self.recordings / secs:.1f}/s",
                    "bytes": f"{self.bytes_archived / secs / 2**20:.1f} MiB/s",
                }
            )
        return rows

    def failures_markdown(self) -> str:
        """The problems of this run, with reasons, as Markdown."""
        if not self.problems:
            return "No recording ended failed, missing or conflict in this run."
        lines = [
            f"# {len(self.problems)} recording(s) need attention",
            "",
            "| recording_uuid | outcome | reason |",
            "|---|---|---|",
        ]
        for p in self.problems:
            reason = (p.reason or "").replace("|", "\\|").replace("\n", " ")[:_SHORT]
            lines.append(f"| `{p.recording_uuid}` | {p.outcome.value} | {reason} |")
        lines += ["", "Requeue after fixing the cause: `tenios-archive ledger requeue UUID...`."]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A plain summary (the flow's return value)."""
        return {
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "counts": dict(self.counts),
            "recordings": self.recordings,
            "retry_reasons": dict(self.retry_reasons),
            "released_from_drop": self.released_from_drop,
            "per_source": dict(self.per_source),
            "bytes_archived": self.bytes_archived,
            "exit_code": self.exit_code,
            "stopped": {
                **self.stopped.to_dict(),
                "message": self.stop_message,
                "unreleased": self.unreleased,
                "lease_ends_by": self.lease_ends_by.isoformat() if self.lease_ends_by else None,
            }
            if self.stopped
            else None,
            "cut_short": self.cut_short,
            "notes": list(self.notes),
            "duplicate_content": [
                {"recording_uuid": d.recording_uuid, "same_content_as": list(d.same_content_as)}
                for d in self.duplicate_content
            ],
            "problems": [
                {"recording_uuid": p.recording_uuid, "outcome": p.outcome.value, "reason": p.reason}
                for p in self.problems
            ],
        }


def _source_kind(source: str | None) -> str:
    return (source or "unknown").split(":", 1)[0]


def claims_of_others(ledger: Ledger, owner: str, *, limit: int = 20) -> dict[str, Any]:
    """Recordings another worker holds at the start of a run (claimed, lease running):
    a worker that was killed leaves them so until its lease ends.  For the summary:
    ``{"count", "recordings": [{"recording_uuid", "owner", "lease_ends_in_seconds"}]}``."""
    total, rows = ledger.in_progress(limit=limit)
    now = ledger.clock_now()
    held = [
        {
            "recording_uuid": rec.recording_uuid,
            "owner": rec.lease_owner,
            "lease_ends_in_seconds": max(0.0, (rec.lease_expires_at - now).total_seconds())
            if rec.lease_expires_at is not None
            else None,
        }
        for rec in rows
        if rec.lease_owner != owner
    ]
    return {"count": total, "recordings": held}
