"""`tenios-archive db ...`: the ledger's schema (Alembic)."""

from __future__ import annotations

import typer

from tenios_io.cli._common import console, settings

app = typer.Typer(help="The ledger database's schema (Alembic migrations).", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Create or migrate the ledger database (TENIOS_DATABASE_URL) to the current schema."""
    # Imported here: `db --help` needs neither SQLAlchemy nor Alembic.
    from sqlalchemy.engine import make_url

    from tenios_io.ledger import schema
    from tenios_io.publish.log import KEYGEN_COMMAND

    cfg = settings(ctx)
    url = cfg.database_url
    schema.current_revision(url)  # a clear error if the database cannot be opened
    schema.upgrade(url)
    shown = make_url(url).render_as_string(hide_password=True)
    console.print(f"ledger {shown} is at revision {schema.current_revision(url)} (head)")
    if cfg.custody_key_file is None and not cfg.custody_unsigned:
        # The first run would stop for it: say so now, one line to copy.
        console.print(
            "next, the custody signing key runs need (then set TENIOS_CUSTODY_KEY_FILE to "
            f"that file): {KEYGEN_COMMAND}",
            soft_wrap=True,
            markup=False,
        )


@app.command()
def current(ctx: typer.Context) -> None:
    """Show the database's schema revision; exit 1 if it is not the current one."""
    from tenios_io.ledger import schema

    url = settings(ctx).database_url
    now, head = schema.current_revision(url), schema.head_revision()
    if now == head:
        console.print(f"{now} (head)")
        return
    console.print(
        f"{now or 'not migrated'} — this version needs {head}: run `tenios-archive db upgrade`"
    )
    raise typer.Exit(1)
