"""One archival run from start to summary, whoever runs it.

``run_archive`` wires the pipeline, preflights, does what the run does first (sweep
the drop, import a backfill file), archives through the sliding window of
:func:`tenios_io.run.loop.archive_until_done`, and checkpoints the custody chain.  How a
batch runs is the caller's: the Prefect flows submit a Prefect task (flows/), the
CLI without a Prefect API runs batches on a thread pool in its own process
(:func:`thread_submitter`) — no Prefect imported, no server started.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from tenios_io.config import Settings
from tenios_io.exceptions import is_transient
from tenios_io.ledger import Claim
from tenios_io.ledger.stats import LedgerStats, collect
from tenios_io.progress import NO_PROGRESS, ProgressListener
from tenios_io.publish.checkpoints import unchanged_since_checkpoint, write_checkpoint
from tenios_io.publish.log import load_signer
from tenios_io.run.archiver import Archiver, RecordingResult
from tenios_io.run.interrupt import Interruption
from tenios_io.run.loop import (
    MAX_CONCURRENCY,
    RunSummary,
    Submit,
    archive_until_done,
    claims_of_others,
)
from tenios_io.run.pipeline import Pipeline, open_pipeline
from tenios_io.run.ratelimit import TokenBucket

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A batch (or a run step) that crashed as a whole with a Transient error is run again
#: this many times, after these delays (the Prefect tasks use the same: flows/).
RETRIES = 2
RETRY_DELAYS_SECONDS: tuple[float, ...] = (5.0, 30.0)


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


def checkpoint_step(pipeline: Pipeline, actor: str) -> dict[str, Any]:
    """Verify the chain since the last checkpoint and pin its head in the bucket (not
    when nothing happened since the last checkpoint: an empty run writes none)."""
    unchanged = unchanged_since_checkpoint(pipeline.ledger, pipeline.store)
    if unchanged is not None:
        return {
            "key": unchanged.key,
            "last_seq": unchanged.last_seq,
            "last_hash": unchanged.last_hash,
            "skipped": "nothing new since this checkpoint",
        }
    signer = load_signer(pipeline.settings.custody_key_file)
    written = write_checkpoint(pipeline.ledger, pipeline.store, actor=actor, signer=signer)
    return {"key": written.key, "last_seq": written.last_seq, "last_hash": written.last_hash}


@dataclass
class RunResult:
    """What ``run_archive`` did: the summary, what the steps returned, the ledger stats
    after the run (when asked for)."""

    summary: RunSummary
    extra: dict[str, Any]
    backlog: LedgerStats | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run's result as the CLI prints it and a flow returns it."""
        return {**self.summary.to_dict(), **self.extra}


def run_archive(
    settings: Settings,
    *,
    actor: str,
    submit: Submit,
    concurrency: int,
    limit: int | None,
    batch_size: int,
    time_budget_minutes: float | None,
    max_wait_seconds: float,
    before: Callable[[Pipeline, str], dict[str, Any]],
    checkpoint: Callable[[Pipeline, str], dict[str, Any]],
    before_request: Callable[[], None] | None = None,
    stats: bool = False,
    interruption: Interruption | None = None,
    lend: Callable[[Pipeline], AbstractContextManager[Any]] | None = None,
    progress: ProgressListener = NO_PROGRESS,
) -> RunResult:
    """Wire the pipeline, preflight, ``before`` (sweep, import), archive until done,
    ``checkpoint`` the custody chain (not after a run-wide stop: the bucket or the
    ledger may be gone; the next run checkpoints).  ``lend``: a context the run holds
    around its open pipeline (the flows lend it to their tasks: tenios_io.run.clients).
    ``progress``: told of the run's progress (the CLI's bar)."""
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    with (
        open_pipeline(
            settings,
            actor=actor,
            concurrency=concurrency,
            before_request=before_request,
            progress=progress,
        ) as pipeline,
        (lend or (lambda _p: nullcontext()))(pipeline),
    ):
        pipeline.preflight()
        if interruption is not None:
            pipeline.stop = interruption.stop  # the sweep and an import end early too
        extra = before(pipeline, actor)
        # Claims a killed worker left behind: said in the summary, taken over when due.
        extra["claimed_elsewhere"] = claims_of_others(pipeline.ledger, actor)
        summary = archive_until_done(
            pipeline.ledger,
            pipeline.archiver,
            submit,
            owner=actor,
            limit=limit,
            concurrency=concurrency,
            batch_size=batch_size,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
            time_budget_minutes=time_budget_minutes,
            max_wait_seconds=max_wait_seconds,
            interruption=interruption,
        )
        if summary.stopped is None:
            extra["checkpoint"] = checkpoint(pipeline, actor)
        backlog = collect(pipeline.ledger, pipeline.ledger.clock_now()) if stats else None
    return RunResult(summary, extra, backlog)


def run_in_process(
    settings: Settings,
    *,
    name: str,
    concurrency: int,
    limit: int | None,
    batch_size: int,
    time_budget_minutes: float | None,
    max_wait_seconds: float = 120.0,
    before: Callable[[Pipeline, str], dict[str, Any]],
    rate_limit: float | None = None,
    interruption: Interruption | None = None,
    progress: ProgressListener = NO_PROGRESS,
) -> RunResult:
    """The run in this process, batches on a thread pool: what ``run nightly`` /
    ``run backfill`` do when no Prefect API is configured (no Prefect imported).

    With ``interruption`` (signals, interrupt.py) a run cut short returns without
    waiting for the batches it gave back; the caller ends the process."""
    rate = rate_limit if rate_limit is not None else settings.api_rate_limit
    actor = f"cli:{name}:{uuid.uuid4()}@{socket.gethostname()}"
    workers = max(1, min(concurrency, MAX_CONCURRENCY))
    stop = interruption.stop if interruption is not None else None
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch")
    cut_short = False
    try:
        result = run_archive(
            settings,
            actor=actor,
            submit=thread_submitter(pool, stop=stop),
            concurrency=concurrency,
            limit=limit,
            batch_size=batch_size,
            time_budget_minutes=time_budget_minutes,
            max_wait_seconds=max_wait_seconds,
            before=lambda pipeline, who: with_retries(lambda: before(pipeline, who), stop=stop),
            checkpoint=lambda pipeline, who: with_retries(
                lambda: checkpoint_step(pipeline, who), stop=stop
            ),
            before_request=None if rate is None else TokenBucket(rate),
            interruption=interruption,
            progress=progress,
        )
        cut_short = result.summary.cut_short
        return result
    finally:
        pool.shutdown(wait=not cut_short, cancel_futures=True)


def sweep_first(pipeline: Pipeline, actor: str) -> dict[str, Any]:
    """The nightly run's first step: sweep the SFTP drop."""
    return {"sweep": sweep_step(pipeline, actor)}
