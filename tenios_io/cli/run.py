"""`tenios-archive run ...`: the archival runs with a progress bar.

Through the Prefect flows when a Prefect API is configured (the run appears on that
server); otherwise the same loop in this process, with no Prefect server started
(tenios_io.run.session, cli/_prefect.py).  This module only declares the commands:
what they do is :mod:`tenios_io.cli._running`, imported when a run starts, so
``run --help`` and an argument error load neither SQLAlchemy nor boto3 nor the
pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tenios_io.cli._common import state
from tenios_io.run.options import DEFAULT_CONCURRENCY, RunOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenios_io.cli._running import Preflight
    from tenios_io.run.pipeline import Pipeline


app = typer.Typer(
    help="Archival runs: the nightly run and backfills (in this process; through the "
    "Prefect flows when PREFECT_API_URL is set).",
    no_args_is_help=True,
)


Concurrency = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=32,
        help="Batches archived in parallel (default 8). Given alone, it also caps the "
        "recordings in the air, as before --in-flight existed.",
        show_default=False,
    ),
]


InFlight = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=1024,
        help="Recordings in the air at once in this process (default TENIOS_IN_FLIGHT, 64; "
        "--concurrency N alone: N): raise it for far-away peers and big backlogs.",
    ),
]


BatchSize = Annotated[int, typer.Option(min=1, max=1000, help="Recordings per claimed batch.")]


Limit = Annotated[int | None, typer.Option(min=1, help="Process at most N recordings.")]


Budget = Annotated[
    float | None,
    typer.Option(min=0.1, help="Stop claiming after this many minutes; claims left are released."),
]


@app.command()
def nightly(
    ctx: typer.Context,
    limit: Limit = None,
    concurrency: Concurrency = None,
    in_flight: InFlight = None,
    batch_size: BatchSize = 50,
    time_budget_minutes: Budget = None,
) -> None:
    """Archive every due recording in the ledger (what the nightly deployment runs).

    Exit 0 when nothing ended failed or conflict in this run, 1 otherwise,
    2 when the preflight fails (database not migrated, bucket unreachable,
    access key missing), 130 / 143 when stopped by SIGINT (Ctrl-C) / SIGTERM.
    """
    from tenios_io.cli._running import run_archival
    from tenios_io.run.session import sweep_first

    cli = state(ctx)
    given = concurrency is not None
    concurrency = concurrency or DEFAULT_CONCURRENCY
    run_archival(
        ctx,
        title="nightly run",
        flow="nightly-archive",
        options=RunOptions(
            concurrency=concurrency,
            concurrency_given=given,
            in_flight=in_flight,
            batch_size=batch_size,
            limit=limit,
            time_budget_minutes=time_budget_minutes,
        ),
        flow_args={
            "limit": limit,
            "concurrency": concurrency if given else None,
            "in_flight": in_flight,
            "batch_size": batch_size,
            "time_budget_minutes": time_budget_minutes,
            "config_file": str(cli.config_file) if cli.config_file else None,
        },
        before=lambda _checked: sweep_first,
    )


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
    concurrency: Concurrency = None,
    in_flight: InFlight = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(min=0.01, help="TENIOS API requests/s (overrides TENIOS_API_RATE_LIMIT)."),
    ] = None,
    batch_size: BatchSize = 50,
    limit: Limit = None,
    time_budget_minutes: Budget = None,
) -> None:
    """Import FILE (all-or-nothing), then archive. Resumable: run it again to continue.

    Exit codes as for `run nightly`.
    """
    from tenios_io.cli._running import run_archival
    from tenios_io.ledger import ImportResult

    cli = state(ctx)
    given = concurrency is not None
    concurrency = concurrency or DEFAULT_CONCURRENCY

    def imported_first(checked: Preflight) -> Callable[[Pipeline, str], dict[str, Any]]:
        imported = checked.imported or ImportResult(0, 0, 0, 0, 0)

        def before(_pipeline: Pipeline, _actor: str) -> dict[str, Any]:
            # The preflight imported the file: the in-process run does not read it again.
            out: dict[str, Any] = {"added": imported.added, "known": imported.known}
            if imported.stopped_after is not None:
                out["stopped_after_lines"] = imported.stopped_after
            return {"imported": out}

        return before

    run_archival(
        ctx,
        title="backfill",
        flow="backfill",
        options=RunOptions(
            concurrency=concurrency,
            concurrency_given=given,
            in_flight=in_flight,
            batch_size=batch_size,
            limit=limit,
            time_budget_minutes=time_budget_minutes,
            rate_limit=rate_limit,
        ),
        flow_args={
            "source_file": str(file),
            "concurrency": concurrency if given else None,
            "in_flight": in_flight,
            "rate_limit": rate_limit,
            "batch_size": batch_size,
            "limit": limit,
            "time_budget_minutes": time_budget_minutes,
            "config_file": str(cli.config_file) if cli.config_file else None,
        },
        before=imported_first,
        register=file,
    )
