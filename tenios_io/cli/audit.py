"""`tenios-archive audit ...`: prove the archive and the ledger are what they claim."""

from __future__ import annotations

import typer

from tenios_io.cli._common import console, err_console, settings
from tenios_io.ledger import open_ledger

app = typer.Typer(
    help="Audit: verify the custody chain, the archive, retention and reports.",
    no_args_is_help=True,
)


@app.command("verify-chain")
def verify_chain(ctx: typer.Context) -> None:
    """Recompute the custody hash chain end to end; exit 1 naming the first broken event."""
    with open_ledger(settings(ctx)) as ledger:
        report = ledger.verify_chain()
    if report.ok:
        console.print(
            f"custody chain OK: {report.events:,} events, head {report.head_seq} {report.head_hash}"
        )
        return
    err_console.print(
        f"[bold red]custody chain BROKEN[/] at event {report.first_broken_seq}: {report.problem}"
        f" ({report.events:,} events verified before it)"
    )
    raise typer.Exit(1)
