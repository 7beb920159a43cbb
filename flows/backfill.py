"""Backfill: import a file of recording ids (the `ledger import` rules), then archive.

Resumable: registration is idempotent, so a second invocation re-imports nothing
and carries on with whatever is still due.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.archiving import MAX_CONCURRENCY, FlowResult, flow_end, pipeline_of, run_archive
from flows.fanout import run_fanned_out, worker_parameters
from tenios_io.ledger.importing import iter_import_file
from tenios_io.run.clients import RunClients
from tenios_io.run.options import DEFAULT_CONCURRENCY, RunOptions


@flow(
    name="backfill",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY),
    validate_parameters=True,
)
def backfill(
    source_file: str,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    batch_size: int = 50,
    limit: int | None = None,
    time_budget_minutes: float | None = None,
    max_wait_seconds: float = 120.0,
    config_file: str | None = None,
    workers: int = 1,
    in_flight: int | None = None,
) -> FlowResult:
    """Register every id in ``source_file`` and archive what is due.

    ``rate_limit`` (requests/s to the TENIOS API) overrides TENIOS_API_RATE_LIMIT.
    The archiving part works on every due recording of the ledger, the imported
    ones included.  ``workers`` > 1: after the import, that many `archive-worker`
    runs on the work pool archive (each with ``concurrency``, ``batch_size``,
    ``limit``, ``time_budget_minutes``), and this run aggregates their summaries.
    """
    path = Path(source_file)
    # Fail before any work when the file is bad: a streamed validation pass (bounded
    # memory), then the import itself, all-or-nothing in the ledger.
    for _ in iter_import_file(path):
        pass

    def import_first(run: RunClients) -> dict[str, Any]:
        pipeline = pipeline_of(run)
        registered = pipeline.ledger.import_recordings(
            iter_import_file(path), actor=f"{run.actor}:import", stop=pipeline.stop
        )
        get_run_logger().info(
            "%s: %d ids, %d new, %d already known",
            source_file,
            registered.read,
            registered.added,
            registered.known,
        )
        imported: dict[str, Any] = {"added": registered.added, "known": registered.known}
        if registered.stopped_after is not None:
            imported["stopped_after_lines"] = registered.stopped_after
        return {"imported": imported}

    if workers > 1:
        return flow_end(
            run_fanned_out(
                "backfill",
                workers=workers,
                config_file=config_file,
                rate_limit=rate_limit,
                worker_parameters=worker_parameters(
                    concurrency, batch_size, limit, time_budget_minutes, max_wait_seconds, in_flight
                ),
                before=import_first,
            )
        )
    return flow_end(
        run_archive(
            "backfill",
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
            before=import_first,
        )
    )
