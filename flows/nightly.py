"""The nightly archival run (deployment `nightly-archive`, 02:00 Europe/Berlin)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.archiving import MAX_CONCURRENCY, FlowResult, flow_end, run_archive, sweep_sftp
from flows.fanout import run_fanned_out, worker_parameters
from tenios_io.run.clients import RunClients
from tenios_io.run.options import DEFAULT_CONCURRENCY, RunOptions


@flow(
    name="nightly-archive",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY),
    log_prints=False,
    validate_parameters=True,
)
def nightly_archive(
    limit: int | None = None,
    concurrency: int | None = None,
    batch_size: int = 50,
    time_budget_minutes: float | None = None,
    max_wait_seconds: float = 120.0,
    config_file: str | None = None,
    workers: int = 1,
    in_flight: int | None = None,
) -> FlowResult:
    """Sweep the SFTP drop (when configured), then archive every due recording.

    Claims ``concurrency`` batches of ``batch_size`` at a time and archives them in
    parallel, until nothing is claimable (waiting up to ``max_wait_seconds`` for
    retries that are about to become due), ``limit`` recordings were processed, or
    ``time_budget_minutes`` is spent; then writes a custody checkpoint into the
    bucket.  Returns the run's summary.  ``workers`` > 1: after the sweep, that
    many `archive-worker` runs on the work pool archive (each with ``concurrency``,
    ``batch_size``, ``limit``, ``time_budget_minutes``), and this run aggregates
    their summaries.
    """

    def sweep_first(run: RunClients) -> dict[str, Any]:
        return {"sweep": sweep_sftp(run)}

    if workers > 1:
        return flow_end(
            run_fanned_out(
                "nightly-archive",
                workers=workers,
                config_file=config_file,
                rate_limit=None,
                worker_parameters=worker_parameters(
                    concurrency, batch_size, limit, time_budget_minutes, max_wait_seconds, in_flight
                ),
                before=sweep_first,
            )
        )
    return flow_end(
        run_archive(
            "nightly-archive",
            RunOptions(
                concurrency=concurrency or DEFAULT_CONCURRENCY,
                concurrency_given=concurrency is not None,
                batch_size=batch_size,
                limit=limit,
                time_budget_minutes=time_budget_minutes,
                max_wait_seconds=max_wait_seconds,
                rate_limit=None,
                in_flight=in_flight,
            ),
            config_file=config_file,
            before=sweep_first,
        )
    )
