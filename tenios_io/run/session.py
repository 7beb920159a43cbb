"""One archival run from start to summary, whoever runs it.

One path for every run: :func:`run_session` takes an open, preflighted pipeline and
one typed :class:`~tenios_io.run.options.RunOptions`, does what the run does first (sweep
the drop, report a backfill's import), archives through the run loop
(:class:`~tenios_io.run.loop.RunLoop`), and checkpoints the custody chain.  Who opens
the pipeline preflights it, once: a Prefect flow through :func:`run_archive`, the CLI
in its own preflight (then :func:`run_in_process`).  How a batch runs is the caller's:
the Prefect flows submit a Prefect task (flows/), the CLI without a Prefect API runs
batches on a thread pool in its own process (:func:`thread_submitter`) — no Prefect
imported, no server started.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from tenios_io.config import Settings
from tenios_io.exceptions import TeniosArchiveError, is_transient
from tenios_io.ledger import Claim
from tenios_io.ledger.stats import LedgerStats, collect
from tenios_io.progress import NO_PROGRESS, ProgressListener
from tenios_io.publish.checkpoints import (
    record_fork,
    unchanged_since_checkpoint,
    write_checkpoint,
)
from tenios_io.publish.log import custody_signer, latest_log_checkpoint, witness_latest
from tenios_io.publish.witnessing import load_witnesses, witness_session
from tenios_io.run.archiver import Archiver, RecordingResult
from tenios_io.run.interrupt import Interruption
from tenios_io.run.loop import LookAgain, RunLoop, RunSummary, Submit, claims_of_others
from tenios_io.run.options import RunOptions
from tenios_io.run.pipeline import Pipeline, open_pipeline
from tenios_io.run.ratelimit import TokenBucket

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A batch (or a run step) that crashed as a whole with a Transient error is run again
#: this many times, after these delays (the Prefect tasks use the same: flows/).
RETRIES = 2
RETRY_DELAYS_SECONDS: tuple[float, ...] = (5.0, 30.0)

#: Drop files the run's sweep saw settling are looked at again in the same run when
#: they settle within this many seconds, and within the run's wait for retries about
#: to become due (``max_wait_seconds``, two minutes for a nightly run); else they are
#: named, and the next run takes them: a short wait at most, never a night.
LOOK_AGAIN_WITHIN_SECONDS = 300.0
#: The second look comes this long after the files should have settled (the ledger's
#: clock decides; this only keeps the two clocks' readings apart).
LOOK_AGAIN_MARGIN_SECONDS = 0.5
#: Looks at the drop after the run's sweep, at most (files delivered while the run
#: looks are looked at again, a few times, not forever).
LOOKS_AGAIN = 3


def with_retries(
    call: Callable[[], T],
    *,
    retries: int = RETRIES,
    delays: Sequence[float] = RETRY_DELAYS_SECONDS,
    stop: threading.Event | None = None,
) -> T:
    """``call()``, again after a Transient error (re-running a batch or a step is safe:
    the ledger fences it); any other error, or the last one, propagates."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise
            delay = delays[min(attempt, len(delays) - 1)]
            log.warning("%s; running it again in %.0f s", exc, delay)
            if (stop or threading.Event()).wait(delay):
                raise  # the run is stopping: no more attempts
    raise AssertionError("unreachable")  # pragma: no cover


def thread_submitter(executor: Executor, *, stop: threading.Event | None = None) -> Submit:
    """Run each batch on ``executor`` (retried like the Prefect task: Transient only)."""

    def submit(
        archiver: Archiver, claims: list[Claim], deadline: float | None
    ) -> Future[list[RecordingResult]]:
        return executor.submit(
            with_retries, lambda: archiver.archive_batch(claims, deadline=deadline), stop=stop
        )

    return submit


def sweep_step(pipeline: Pipeline, actor: str) -> dict[str, Any] | None:
    """Register what the SFTP drop holds and finish pending releases (None: no drop)."""
    report = pipeline.sweep(actor=actor)
    return None if report is None else report.to_dict()


def second_look(
    pipeline: Pipeline,
    actor: str,
    extra: dict[str, Any],
    options: RunOptions,
    *,
    sweep: dict[str, Any] | None = None,
    looks_left: int = LOOKS_AGAIN,
) -> LookAgain | None:
    """The run's next look at the drop, when its last sweep (``sweep``, by default the
    run's first: ``extra["sweep"]``) saw files settling that settle soon
    (:data:`LOOK_AGAIN_WITHIN_SECONDS`, at most the run's ``max_wait_seconds``):
    same-night archival of what was still being written.  A look that finds files
    settling again (delivered meanwhile) arms the next, :data:`LOOKS_AGAIN` at most.
    None when there is nothing to wait for; when the wait is long, the looks are used up
    or the run is limited (``--limit``), ``extra["drop_settling"]`` names the files and
    says the next run takes them.  The last look's report is
    ``extra["drop_second_look"]``."""
    if sweep is None:
        sweep = extra.get("sweep")
    wait = (sweep or {}).get("settle_wait_seconds")
    if sweep is None or wait is None or pipeline.sftp is None:
        return None
    bound = min(LOOK_AGAIN_WITHIN_SECONDS, options.max_wait_seconds)
    if wait + LOOK_AGAIN_MARGIN_SECONDS > bound or options.limit is not None or not looks_left:
        named = ", ".join(sweep.get("settling_files", [])[:5])
        extra["drop_settling"] = (
            f"{sweep.get('settling', 0)} drop file(s) still settling (in {wait:.0f} s at the "
            f"latest: {named}); the next run archives them"
        )
        return None

    def look() -> LookAgain | None:
        try:
            found = sweep_step(pipeline, actor)
        except TeniosArchiveError as exc:  # what the run did stands; the next run looks
            log.warning("another look at the SFTP drop failed: %s", exc)
            extra["drop_second_look"] = {"error": str(exc)}
            return None
        extra["drop_second_look"] = found
        extra.pop("drop_settling", None)
        return second_look(pipeline, actor, extra, options, sweep=found, looks_left=looks_left - 1)

    return LookAgain(time.monotonic() + wait + LOOK_AGAIN_MARGIN_SECONDS, look)


def checkpoint_step(pipeline: Pipeline, actor: str) -> dict[str, Any]:
    """Verify the chain since the last checkpoint and pin its head in the bucket (not
    when nothing happened since the last checkpoint: an empty run writes none, but
    submits the latest log checkpoint to a witness that has not cosigned it yet).

    With witnesses configured, ``witnesses`` says what they answered and
    ``log_forked`` the custody alarm when one refused the log's history (the run
    then ends with exit code 1, see :meth:`RunResult.to_dict`)."""
    settings = pipeline.settings
    signer = custody_signer(settings.custody_key_file, unsigned=settings.custody_unsigned)
    witnesses = load_witnesses(settings.custody_witnesses, settings.custody_witness_quorum)
    with witness_session(witnesses) as session:
        unchanged = unchanged_since_checkpoint(pipeline.ledger, pipeline.store)
        logged = latest_log_checkpoint(pipeline.ledger) if unchanged is not None else None
        # An unsigned checkpoint is superseded by a signed one as soon as there is a key.
        if unchanged is not None and not (signer is not None and logged and not logged.signed):
            result: dict[str, Any] = {
                "key": unchanged.key,
                "last_seq": unchanged.last_seq,
                "last_hash": unchanged.last_hash,
                "skipped": "nothing new since this checkpoint",
            }
            report = witness_latest(pipeline.store, session) if session else None
            record_fork(pipeline.ledger, report, actor=actor)
        else:
            written = write_checkpoint(
                pipeline.ledger, pipeline.store, actor=actor, signer=signer, witnesses=session
            )
            result = {
                "key": written.key,
                "last_seq": written.last_seq,
                "last_hash": written.last_hash,
            }
            report = written.witness
    if report is not None:
        result["witnesses"] = report.to_dict()
        if report.forked:
            result["log_forked"] = report.fork_message()
            log.error("%s", result["log_forked"])
    return result


@dataclass
class RunResult:
    """What ``run_archive`` did: the summary, what the steps returned, the ledger stats
    after the run (when asked for)."""

    summary: RunSummary
    extra: dict[str, Any]
    backlog: LedgerStats | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run's result as the CLI prints it and a flow returns it (exit code 1 when
        a witness refused the custody log's history, whatever the recordings did)."""
        result = {**self.summary.to_dict(), **self.extra}
        if (self.extra.get("checkpoint") or {}).get("log_forked") and not result["exit_code"]:
            result["exit_code"] = 1
        return result


def run_session(
    pipeline: Pipeline,
    options: RunOptions,
    *,
    actor: str,
    submit: Submit,
    before: Callable[[Pipeline, str], dict[str, Any]],
    checkpoint: Callable[[Pipeline, str], dict[str, Any]],
    stats: bool = False,
    interruption: Interruption | None = None,
) -> RunResult:
    """One run on an open, preflighted pipeline — the one path every run takes, from
    the CLI in this process or from a Prefect flow: ``before`` (sweep, import), the
    run loop (:class:`~tenios_io.run.loop.RunLoop`), ``checkpoint`` the custody chain
    (not after a run-wide stop: the bucket or the ledger may be gone; the next run
    checkpoints), the ledger stats after the run when ``stats``."""
    if interruption is not None:
        pipeline.stop = interruption.stop  # the sweep and an import end early too
    extra = before(pipeline, actor)
    # Claims a killed worker left behind: said in the summary, taken over when due.
    extra["claimed_elsewhere"] = claims_of_others(pipeline.ledger, actor)
    summary = RunLoop(
        pipeline.ledger,
        pipeline.archiver,
        submit,
        owner=actor,
        options=options,
        lease_seconds=pipeline.settings.lease_seconds,
        max_attempts=pipeline.settings.max_attempts,
        interruption=interruption,
        look_again=second_look(pipeline, actor, extra, options),
    ).run()
    if summary.stopped is None:
        extra["checkpoint"] = checkpoint(pipeline, actor)
    backlog = collect(pipeline.ledger, pipeline.ledger.clock_now()) if stats else None
    return RunResult(summary, extra, backlog)


def run_archive(
    settings: Settings,
    options: RunOptions,
    *,
    actor: str,
    submit: Submit,
    before: Callable[[Pipeline, str], dict[str, Any]],
    checkpoint: Callable[[Pipeline, str], dict[str, Any]],
    before_request: Callable[[], None] | None = None,
    stats: bool = False,
    interruption: Interruption | None = None,
    lend: Callable[[Pipeline], AbstractContextManager[Any]] | None = None,
    progress: ProgressListener = NO_PROGRESS,
) -> RunResult:
    """Open the run's pipeline, preflight it once, and :func:`run_session` on it (what
    a Prefect flow's process does).  ``lend``: a context the run holds around its open
    pipeline (the flows lend it to their tasks: tenios_io.run.clients).  ``progress``:
    told of the run's progress."""
    with (
        open_pipeline(
            settings,
            actor=actor,
            concurrency=options.concurrency,
            in_flight=options.recordings,
            batches=options.batches,
            before_request=before_request,
            progress=progress,
        ) as pipeline,
        (lend or (lambda _p: nullcontext()))(pipeline),
    ):
        pipeline.preflight()
        return run_session(
            pipeline,
            options,
            actor=actor,
            submit=submit,
            before=before,
            checkpoint=checkpoint,
            stats=stats,
            interruption=interruption,
        )


def in_process_actor(name: str) -> str:
    """Who the custody events of a run in this process name: the run and the host."""
    return f"cli:{name}:{uuid.uuid4()}@{socket.gethostname()}"


def rate_limiter(settings: Settings, options: RunOptions) -> TokenBucket | None:
    """The in-process limit on TENIOS API requests: the run's own, else the setting's."""
    rate = options.rate_limit if options.rate_limit is not None else settings.api_rate_limit
    return None if rate is None else TokenBucket(rate)


def run_in_process(
    pipeline: Pipeline,
    options: RunOptions,
    *,
    actor: str,
    before: Callable[[Pipeline, str], dict[str, Any]],
    interruption: Interruption | None = None,
) -> RunResult:
    """The run in this process on the pipeline the caller opened and preflighted,
    batches on a thread pool: what ``run nightly`` / ``run backfill`` do when no Prefect
    API is configured (no Prefect imported).  Open the pipeline with
    :func:`rate_limiter` as its ``before_request``.

    With ``interruption`` (signals, interrupt.py) a run cut short returns without
    waiting for the batches it gave back; the caller ends the process."""
    stop = interruption.stop if interruption is not None else None
    pool = ThreadPoolExecutor(max_workers=options.batches, thread_name_prefix="batch")
    cut_short = False
    try:
        result = run_session(
            pipeline,
            options,
            actor=actor,
            submit=thread_submitter(pool, stop=stop),
            before=lambda pipeline, who: with_retries(lambda: before(pipeline, who), stop=stop),
            checkpoint=lambda pipeline, who: with_retries(
                lambda: checkpoint_step(pipeline, who), stop=stop
            ),
            interruption=interruption,
        )
        cut_short = result.summary.cut_short
        return result
    finally:
        pool.shutdown(wait=not cut_short, cancel_futures=True)


def sweep_first(pipeline: Pipeline, actor: str) -> dict[str, Any]:
    """The nightly run's first step: sweep the SFTP drop."""
    return {"sweep": sweep_step(pipeline, actor)}
