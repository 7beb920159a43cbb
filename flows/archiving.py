"""The archiving loop both flows share: claim a round of batches, map the batch task
over them on the flow's bounded task runner, repeat until nothing is claimable or
the time budget is spent.  Logic lives in tenios_io; this only orchestrates."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import get_run_context
from prefect.utilities.annotations import unmapped

from flows.limits import api_rate_limiter
from tenios_io.archive import Archiver, Outcome, RecordingResult
from tenios_io.audit import write_checkpoint
from tenios_io.audit.checkpoint import unchanged_since_checkpoint
from tenios_io.config import load_settings
from tenios_io.custodylog import load_signer
from tenios_io.exceptions import is_transient
from tenios_io.ledger import Claim, utc_now
from tenios_io.ledger.stats import collect
from tenios_io.monitoring import markdown
from tenios_io.pipeline import Pipeline, open_pipeline
from tenios_io.runs import RunSummary, claim_round, claims_of_others, wait_for_due
from tenios_io.runstop import record_stop


def only_transient(_task: Any, _run: TaskRun, state: State) -> bool:
    """Prefect retries a crashed batch only when its error is Transient."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the question is only "transient?"
        return is_transient(exc)
    return False


#: Options of every task that Prefect may retry: only Transient errors, no caching (the
#: ledger, not Prefect's result cache, is the idempotency record).
RETRIED_TASK: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": only_transient,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}
#: Upper bound of parallel batches in one process; `concurrency` picks up to this many.
MAX_CONCURRENCY = 32


@task(name="archive-batch", **RETRIED_TASK)
def archive_batch(
    archiver: Archiver, claims: list[Claim], deadline: float | None
) -> list[RecordingResult]:
    """Archive one claimed batch (re-running it is safe: the ledger fences it)."""
    return archiver.archive_batch(claims, deadline=deadline)


@task(name="sftp-sweep", **RETRIED_TASK)
def sweep_sftp(pipeline: Pipeline, actor: str) -> dict[str, Any] | None:
    """Register what the SFTP drop holds and finish pending releases (None: no drop)."""
    report = pipeline.sweep(actor=actor)
    return None if report is None else report.to_dict()


@task(name="custody-checkpoint", **RETRIED_TASK)
def checkpoint_chain(pipeline: Pipeline, actor: str) -> dict[str, Any]:
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


def run_actor(flow_name: str) -> str:
    """Who the custody events name: the flow run and the host."""
    try:
        run_id = str(get_run_context().flow_run.id)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - outside a flow run (plain-function tests)
        run_id = "local"
    return f"prefect:{flow_name}:{run_id}@{socket.gethostname()}"


def archive_until_done(
    pipeline: Pipeline,
    *,
    owner: str,
    limit: int | None,
    concurrency: int,
    batch_size: int,
    time_budget_minutes: float | None,
    max_wait_seconds: float,
) -> RunSummary:
    """Claim → map → repeat; returns the run's summary."""
    summary = RunSummary(started_at=utc_now())
    deadline = time.monotonic() + time_budget_minutes * 60 if time_budget_minutes else None
    remaining = limit
    lease = pipeline.settings.lease_seconds
    while deadline is None or time.monotonic() < deadline:
        batches = claim_round(
            pipeline.ledger,
            batches=concurrency,
            batch_size=batch_size,
            remaining=remaining,
            lease_seconds=lease,
            owner=owner,
            max_attempts=pipeline.settings.max_attempts,
        )
        if not batches:
            if remaining == 0 or not wait_for_due(
                pipeline.ledger, horizon_seconds=max_wait_seconds, deadline=deadline
            ):
                break
            continue
        futures = archive_batch.map(unmapped(pipeline.archiver), batches, unmapped(deadline))
        for batch, future in zip(batches, futures, strict=True):
            summary.add(_results(batch, future.result(raise_on_failure=False)))
        if remaining is not None:
            remaining -= sum(len(b) for b in batches)
        if pipeline.archiver.guard.stopped is not None:
            break
    summary.stopped = pipeline.archiver.guard.stopped
    if summary.stopped is not None:
        record_stop(pipeline.ledger, summary.stopped, released=summary.counts["released"])
        get_run_logger().error("%s", summary.stopped.message)
    summary.finish()
    return summary


def _results(batch: list[Claim], result: Any) -> list[RecordingResult]:
    if isinstance(result, list):
        return result
    # The batch crashed as a whole even after Prefect's retries: its leases expire and the
    # recordings are claimed again next run; this run reports them as failed.
    reason = f"batch crashed: {result}; retried after the lease expires"
    return [RecordingResult(c.recording_uuid, Outcome.FAILED, reason=reason) for c in batch]


def publish_summary(summary: RunSummary, *, key: str) -> None:
    """The run's summary table and its failures as Prefect artifacts."""
    create_table_artifact(
        key=f"{key}-summary",
        table=summary.table(),
        description="Recordings per outcome, bytes archived and throughput of this run.",
    )
    create_markdown_artifact(
        key=f"{key}-failures",
        markdown=summary.failures_markdown(),
        description="Recordings that ended failed, missing or conflict, with reasons.",
    )
    get_run_logger().info(
        "archived %s recordings (%s bytes) in %.1f s",
        summary.counts.get(Outcome.ARCHIVED.value, 0),
        summary.bytes_archived,
        summary.seconds,
    )


def run_archive(
    flow_name: str,
    *,
    config_file: str | None,
    rate_limit: float | None,
    concurrency: int,
    limit: int | None,
    batch_size: int,
    time_budget_minutes: float | None,
    max_wait_seconds: float,
    before: Callable[[Pipeline, str], dict[str, Any]],
) -> dict[str, Any]:
    """The body of an archiving flow: wire the pipeline, preflight, ``before`` (what the
    flow does first: sweep, import), archive until done, checkpoint the custody chain,
    publish the summary.  Returns the summary plus what ``before`` returned."""
    settings = load_settings(config_file)
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    actor = run_actor(flow_name)
    rate = rate_limit if rate_limit is not None else settings.api_rate_limit
    with open_pipeline(
        settings, actor=actor, concurrency=concurrency, before_request=api_rate_limiter(rate)
    ) as pipeline:
        pipeline.preflight()
        extra = before(pipeline, actor)
        # Claims a killed worker left behind: said in the summary, taken over when due.
        extra["claimed_elsewhere"] = claims_of_others(pipeline.ledger, actor)
        summary = archive_until_done(
            pipeline,
            owner=actor,
            limit=limit,
            concurrency=concurrency,
            batch_size=batch_size,
            time_budget_minutes=time_budget_minutes,
            max_wait_seconds=max_wait_seconds,
        )
        # A stopped run may have lost the bucket or the ledger: the next run checkpoints.
        if summary.stopped is None:
            extra["checkpoint"] = checkpoint_chain(pipeline, actor)
        backlog = collect(pipeline.ledger, pipeline.ledger.clock_now())
    publish_summary(summary, key=flow_name)
    create_markdown_artifact(
        key=f"{flow_name}-ledger",
        markdown=markdown(backlog),
        description="`ledger stats` after this run.",
    )
    return {**summary.to_dict(), **extra}
