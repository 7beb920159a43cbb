"""An archive worker (deployment `archive-worker`): claims from the shared ledger until
nothing is due or its time budget ends; one of the runs a fanned-out `backfill` or
`nightly-archive` starts on the work pool (flows/fanout.py)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.archiving import MAX_CONCURRENCY, FlowResult, flow_end, run_archive
from tenios_io.run.fanout import idle_note, worker_summary
from tenios_io.run.options import DEFAULT_CONCURRENCY, RunOptions

#: The artifact key of a worker's plain summary; the parent reads it back.
RESULT_KEY = "archive-worker-result"


@flow(
    name="archive-worker",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY),
    validate_parameters=True,
)
def archive_worker(
    concurrency: int | None = None,
    batch_size: int = 50,
    rate_limit: float | None = None,
    limit: int | None = None,
    time_budget_minutes: float | None = None,
    max_wait_seconds: float = 120.0,
    config_file: str | None = None,
    in_flight: int | None = None,
) -> FlowResult:
    """Archive due recordings of the shared ledger (no import, no sweep, no checkpoint:
    the parent run does those) and return a plain summary: recordings, archived,
    bytes, seconds, rate (recordings/s), failures."""
    result = run_archive(
        "archive-worker",
        RunOptions(
            concurrency=concurrency or DEFAULT_CONCURRENCY,
            concurrency_given=concurrency is not None,
            batch_size=batch_size,
            limit=limit,
            time_budget_minutes=time_budget_minutes,
            max_wait_seconds=max_wait_seconds,
            rate_limit=rate_limit,
            in_flight=in_flight,
        ),
        config_file=config_file,
        before=lambda _run: {},
        checkpoint=False,
    )
    summary = worker_summary(result)
    idle = idle_note(result)
    create_table_artifact(
        key=RESULT_KEY,
        table=[summary],
        description="This worker's summary, aggregated by the run that started it."
        + (f" {idle}" if idle else ""),
    )
    if idle:
        get_run_logger().info("%s", idle)
    return flow_end(result, summary)
