"""The `tenios-archive` command line (Typer + Rich).

Exit codes (README, "Exit codes"): 0 ok; 1 the operation found problems or something
failed; 2 usage or configuration error.  Errors are one readable line on
stderr; library errors are mapped here, once, in :func:`main`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from tenios_io.cli import api, audit, custodylog, db, demo, ledger, purge, run, simulator
from tenios_io.cli._common import CliState, err_console
from tenios_io.exceptions import ConfigError, SchemaNotCurrent, TeniosArchiveError

app = typer.Typer(
    name="tenios-archive",
    help="Archive TENIOS call recordings into S3 with retention, checksums and a "
    "verifiable custody ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file with settings (keys: the variable names without TENIOS_, "
            "e.g. s3_bucket). The environment overrides it.",
            dir_okay=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More logging (Prefect at INFO).")
    ] = False,
) -> None:
    ctx.obj = CliState(config_file=config, verbose=verbose)


app.add_typer(db.app, name="db")
app.add_typer(ledger.app, name="ledger")
app.add_typer(api.app, name="api")
app.add_typer(run.app, name="run")
custodylog.register(audit.app)
custodylog.register_ledger(ledger.app)
app.add_typer(audit.app, name="audit")
app.add_typer(simulator.app, name="simulator")
purge.register(app)
demo.register(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI; map library errors to exit 1, configuration errors to 2.

    Usage errors are Typer's own (exit 2, with the usage line).  A command that
    found problems raises ``typer.Exit(1)``.
    """
    command = typer.main.get_command(app)
    try:
        command.main(
            args=list(argv) if argv is not None else None,
            prog_name="tenios-archive",
            standalone_mode=True,
        )
    except (ConfigError, SchemaNotCurrent) as exc:
        err_console.print(f"[bold red]configuration error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
    except TeniosArchiveError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)


__all__ = ["app", "main"]
