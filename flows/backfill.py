"""Backfill: import a file of recording ids (the `ledger import` rules), then archive.

Resumable: registration is idempotent, so a second invocation re-imports nothing
and carries on with whatever is still due.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.archiving import (
    archive_until_done,
    checkpoint_chain,
    publish_summary,
    run_actor,
)
from flows.limits import api_rate_limiter
from flows.nightly import MAX_CONCURRENCY
from tenios_io.config import load_settings
from tenios_io.ledger.importing import read_import_file
from tenios_io.pipeline import open_pipeline


@flow(
    name="backfill",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY),
    validate_parameters=True,
)
def backfill(
    source_file: str,
    concurrency: int = 8,
    rate_limit: float | None = None,
    batch_size: int = 50,
    limit: int | None = None,
    time_budget_minutes: float | None = None,
    max_wait_seconds: float = 120.0,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Register every id in ``source_file`` and archive what is due.

    ``rate_limit`` (requests/s to the TENIOS API) overrides TENIOS_API_RATE_LIMIT.
    The archiving part works on every due recording of the ledger, the imported
    ones included.
    """
    settings = load_settings(config_file)
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    actor = run_actor("backfill")
    items = read_import_file(Path(source_file))
    rate = rate_limit if rate_limit is not None else settings.api_rate_limit
    with open_pipeline(
        settings, actor=actor, concurrency=concurrency, before_request=api_rate_limiter(rate)
    ) as pipeline:
        pipeline.preflight()
        registered = pipeline.ledger.register(items, actor=f"{actor}:import")
        get_run_logger().info(
            "%s: %d ids, %d new, %d already known",
            source_file,
            len(items),
            len(registered.added),
            len(registered.known),
        )
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
    publish_summary(summary, key="backfill")
    result = summary.to_dict()
    result["imported"] = {"added": len(registered.added), "known": len(registered.known)}
    result["checkpoint"] = checkpoint
    return result
