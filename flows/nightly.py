"""The nightly archival run (deployment `nightly-archive`, 02:00 Europe/Berlin)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.archiving import (
    archive_until_done,
    checkpoint_chain,
    publish_summary,
    run_actor,
    sweep_sftp,
)
from flows.limits import api_rate_limiter
from tenios_io.config import load_settings
from tenios_io.pipeline import open_pipeline

#: Upper bound of parallel batches in one process; `concurrency` picks up to this many.
MAX_CONCURRENCY = 32


@flow(
    name="nightly-archive",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY),
    log_prints=False,
    validate_parameters=True,
)
def nightly_archive(
    limit: int | None = None,
    concurrency: int = 8,
    batch_size: int = 50,
    time_budget_minutes: float | None = None,
    max_wait_seconds: float = 120.0,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Sweep the SFTP drop (when configured), then archive every due recording.

    Claims ``concurrency`` batches of ``batch_size`` at a time and archives them in
    parallel, until nothing is claimable (waiting up to ``max_wait_seconds`` for
    retries that are about to become due), ``limit`` recordings were processed, or
    ``time_budget_minutes`` is spent.  Returns the run's summary.
    """
    settings = load_settings(config_file)
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    actor = run_actor("nightly-archive")
    with open_pipeline(
        settings,
        actor=actor,
        concurrency=concurrency,
        before_request=api_rate_limiter(settings.api_rate_limit),
    ) as pipeline:
        pipeline.preflight()
        sweep = sweep_sftp(pipeline, actor)
        summary = archive_until_done(
            pipeline,
            owner=actor,
            limit=limit,
            concurrency=concurrency,
            batch_size=batch_size,
            time_budget_minutes=time_budget_minutes,
            max_wait_seconds=max_wait_seconds,
        )
        checkpoint = checkpoint_chain(pipeline, actor)
    publish_summary(summary, key="nightly-archive")
    result = summary.to_dict()
    result["sweep"] = sweep
    result["checkpoint"] = checkpoint
    return result
