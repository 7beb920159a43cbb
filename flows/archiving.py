"""The archiving loop both flows share: claim a round of batches, map the batch task
over them on the flow's bounded task runner, repeat until nothing is claimable or
the time budget is spent.  Logic lives in tenios_io; this only orchestrates."""

from __future__ import annotations

import socket
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import get_run_context
from prefect.utilities.annotations import unmapped

from tenios_io.archive import Archiver, Outcome, RecordingResult
from tenios_io.audit import write_checkpoint
from tenios_io.exceptions import is_transient
from tenios_io.ledger import Claim, utc_now
from tenios_io.pipeline import Pipeline
from tenios_io.runs import RunSummary, claim_round, wait_for_due


def only_transient(_task: Any, _run: TaskRun, state: State) -> bool:
    """Prefect retries a crashed batch only when its error is Transient."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the question is only "transient?"
        return is_transient(exc)
    return False


@task(
    name="archive-batch",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def archive_batch(
    archiver: Archiver, claims: list[Claim], deadline: float | None
) -> list[RecordingResult]:
    """Archive one claimed batch (re-running it is safe: the ledger fences it)."""
    return archiver.archive_batch(claims, deadline=deadline)


@task(
    name="sftp-sweep",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def sweep_sftp(pipeline: Pipeline, actor: str) -> dict[str, Any] | None:
    """Register what the SFTP drop holds and finish pending releases (None: no drop)."""
    report = pipeline.sweep(actor=actor)
    return None if report is None else report.to_dict()


@task(
    name="custody-checkpoint",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def checkpoint_chain(pipeline: Pipeline, actor: str) -> dict[str, Any]:
    """Verify the chain since the last checkpoint and pin its head in the bucket."""
    written = write_checkpoint(pipeline.ledger, pipeline.store, actor=actor)
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
