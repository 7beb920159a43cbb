"""`tenios-archive db ...`: the ledger's schema (Alembic)."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from tenios_io.cli._common import console, settings
from tenios_io.ledger import schema

app = typer.Typer(help="The ledger database's schema (Alembic migrations).", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Create or migrate the ledger database (TENIOS_DATABASE_URL) to the current schema."""
    url = settings(ctx).database_url
    schema.current_revision(url)  # a clear error if the database cannot be opened
    schema.upgrade(url)
    shown = make_url(url).render_as_string(hide_password=True)
    console.print(f"ledger {shown} is at revision {schema.current_revision(url)} (head)")


@app.command()
def current(ctx: typer.Context) -> None:
    """Show the database's schema revision; exit 1 if it is not the current one."""
    url = settings(ctx).database_url
    now, head = schema.current_revision(url), schema.head_revision()
    if now == head:
        console.print(f"{now} (head)")
        return
    console.print(
        f"{now or 'not migrated'} — this version needs {head}: run `tenios-archive db upgrade`"
    )
    raise typer.Exit(1)
