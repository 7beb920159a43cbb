"""`tenios-archive ledger stats`: the backlog for monitoring, as text, JSON or
Prometheus metrics.  Only typer at module level: the ledger package, Rich tables and
prometheus_client are imported when the command runs (the CLI starts fast)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The backlog: due now, how long the most overdue recording has waited, in progress
    (expired leases), failed/missing/conflict and archived in the last 24 h, archived per
    hour, custody events queued."""
    from rich.table import Table

    from tenios_io.cli._common import console, settings
    from tenios_io.ledger import open_ledger
    from tenios_io.ledger.stats import collect
    from tenios_io.monitoring import rows

    with open_ledger(settings(ctx)) as ledger:
        snapshot = collect(ledger, ledger.clock_now())
    if as_json:
        sys.stdout.write(json.dumps(snapshot.as_json()) + "\n")
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, value in rows(snapshot):
        table.add_row(label, value)
    console.print(table)
