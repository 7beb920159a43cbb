"""`tenios-archive run ...`: the archival runs (Prefect flows) with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tenios_io.cli._common import console, err_console, settings, state
from tenios_io.cli._prefect import prepare_prefect
from tenios_io.cli._runview import (
    RunProgress,
    claimed_elsewhere_table,
    problems_table,
    summary_table,
)
from tenios_io.config import Settings
from tenios_io.ledger import NewRecording
from tenios_io.ledger.importing import iter_import_file
from tenios_io.pipeline import open_pipeline

app = typer.Typer(
    help="Archival runs: the nightly run and backfills (Prefect flows; ephemeral Prefect "
    "unless PREFECT_API_URL is set).",
    no_args_is_help=True,
)

Concurrency = Annotated[int, typer.Option(min=1, max=32, help="Batches archived in parallel.")]
BatchSize = Annotated[int, typer.Option(min=1, max=1000, help="Recordings per claimed batch.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Process at most N recordings.")]
Budget = Annotated[
    float | None,
    typer.Option(min=0.1, help="Stop claiming after this many minutes; claims left are released."),
]


def preflight(
    cfg: Settings, concurrency: int, register: Path | Sequence[NewRecording] | None = None
) -> int:
    """Database migrated, bucket reachable, access key present — before any work.

    Imports the file ``register`` (a backfill's ids, streamed: the flow's own import
    then finds them known), drains the producers' intake, and returns how many
    recordings are due now, for the progress bar.
    Errors are ConfigError / SchemaNotCurrent: exit 2 with the reason.
    """
    with open_pipeline(cfg, actor="cli:preflight", concurrency=concurrency) as pipeline:
        status = pipeline.preflight()
        for warning in status.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        if register is not None:
            items = iter_import_file(register) if isinstance(register, Path) else register
            result = pipeline.ledger.import_recordings(items, actor="cli:run-backfill")
            console.print(
                f"{result.read:,} ids: {result.added:,} new, {result.known:,} already known"
                + (f", {result.duplicates:,} repeated in the file" if result.duplicates else "")
            )
        drained = pipeline.ledger.drain_intake(actor="cli:preflight")
        if drained.taken:
            console.print(
                f"intake: {drained.registered:,} new, {drained.known:,} already known, "
                f"{drained.rejected:,} rejected"
                + (" (`tenios-archive ledger intake --rejected`)" if drained.rejected else "")
            )
        return pipeline.ledger.count_due()


def run_flow(title: str, total: int | None, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a flow under the progress bar and print its summary; returns the flow's result."""
    view = RunProgress(console, total)
    with view.shown():
        result = call()
    console.print(summary_table(result, title))
    for extra in (claimed_elsewhere_table(result), problems_table(result)):
        if extra is not None:
            console.print(extra)
    if result.get("stopped"):
        err_console.print(f"[red]{escape(result['stopped']['message'])}[/red]")
    return result


@app.command()
def nightly(
    ctx: typer.Context,
    limit: Limit = None,
    concurrency: Concurrency = 8,
    batch_size: BatchSize = 50,
    time_budget_minutes: Budget = None,
) -> None:
    """Archive every due recording in the ledger (what the nightly deployment runs).

    Exit 0 when nothing ended failed or conflict in this run, 1 otherwise,
    2 when the preflight fails (database not migrated, bucket unreachable,
    access key missing).
    """
    cli = state(ctx)
    cfg = settings(ctx)
    due = preflight(cfg, concurrency)
    prepare_prefect(cli.verbose)
    from flows.nightly import nightly_archive

    total = min(due, limit) if limit else due
    result = run_flow(
        "nightly run",
        total,
        lambda: nightly_archive(
            limit=limit,
            concurrency=concurrency,
            batch_size=batch_size,
            time_budget_minutes=time_budget_minutes,
            config_file=str(cli.config_file) if cli.config_file else None,
        ),
    )
    raise typer.Exit(int(result["exit_code"]))


@app.command()
def backfill(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Ids to import (the `ledger import` formats).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    concurrency: Concurrency = 8,
    rate_limit: Annotated[
        float | None,
        typer.Option(min=0.01, help="TENIOS API requests/s (overrides TENIOS_API_RATE_LIMIT)."),
    ] = None,
    batch_size: BatchSize = 50,
    limit: Limit = None,
    time_budget_minutes: Budget = None,
) -> None:
    """Import FILE (all-or-nothing), then archive. Resumable: run it again to continue."""
    cli = state(ctx)
    cfg = settings(ctx)
    due = preflight(cfg, concurrency, register=file)
    prepare_prefect(cli.verbose)
    from flows.backfill import backfill as backfill_flow

    result = run_flow(
        "backfill",
        min(due, limit) if limit else due,
        lambda: backfill_flow(
            source_file=str(file),
            concurrency=concurrency,
            rate_limit=rate_limit,
            batch_size=batch_size,
            limit=limit,
            time_budget_minutes=time_budget_minutes,
            config_file=str(cli.config_file) if cli.config_file else None,
        ),
    )
    raise typer.Exit(int(result["exit_code"]))
