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
from rich.markup import escape
from typer._click.exceptions import ClickException  # Typer 0.29 vendors Click
from typer.exceptions import Abort

from tenios_io.cli._common import CliState, err_console
from tenios_io.cli._help import show_no_type_for_flags
from tenios_io.cli._lazy import LazyCommand, LazyGroup
from tenios_io.exceptions import ConfigError, ImportFileError, SchemaNotCurrent, TeniosArchiveError

show_no_type_for_flags()

_CUSTODYLOG = "tenios_io.cli.custodylog"


class _Commands(LazyGroup):
    """Every subcommand, imported when used (see _lazy.py)."""

    lazy = {
        "db": LazyCommand(
            "tenios_io.cli.db", "app", "The ledger database's schema (Alembic migrations)."
        ),
        "ledger": LazyCommand(
            "tenios_io.cli.ledger",
            "app",
            "The ledger: which recordings exist, their state, and their custody events.",
            extend=(_CUSTODYLOG, "register_ledger"),
        ),
        "api": LazyCommand(
            "tenios_io.cli.api",
            "app",
            "Call the TENIOS record-call API (start, stop, retrieve a recording).",
        ),
        "run": LazyCommand(
            "tenios_io.cli.run", "app", "Archival runs: the nightly run and backfills."
        ),
        "audit": LazyCommand(
            "tenios_io.cli.audit",
            "app",
            "Audit: verify the archive and the custody chain, reconcile, retention, reports.",
            extend=(_CUSTODYLOG, "register"),
        ),
        "store": LazyCommand(
            "tenios_io.cli.store", "app", "The archive bucket: create it with Object Lock."
        ),
        "simulator": LazyCommand(
            "tenios_io.cli.simulator",
            "app",
            "The TENIOS record-call API simulator: serve it, or seed recordings into one.",
        ),
        "purge": LazyCommand(
            "tenios_io.cli.purge",
            "purge",
            "Delete archived recordings whose retention has ended (with evidence).",
        ),
        "prefect": LazyCommand(
            "tenios_io.cli.prefect_apply",
            "app",
            "The Prefect server's shared settings (the TENIOS API rate limit), applied once.",
        ),
        "witness": LazyCommand(
            "tenios_io.cli.witness",
            "app",
            "A witness of the custody log (C2SP tlog-witness): keygen, serve.",
        ),
        "demo": LazyCommand(
            "tenios_io.cli.demo", "demo", "Run the archive end to end on 127.0.0.1."
        ),
    }


app = typer.Typer(
    cls=_Commands,
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


_ROOT_VALUED = ("--config",)


def hoist_root_options(args: list[str]) -> list[str]:
    """Move ``--config FILE`` / ``--config=FILE`` given after the subcommand to the
    front, where Click's root group reads them: operators type ``tenios-archive ledger
    list --config prod.toml`` too.  Click has no option for that (a group's options must
    precede its subcommand), hence this small rewrite.  Everything after ``--`` stays."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if rest and arg in _ROOT_VALUED and index + 1 < len(args):
            front += [arg, args[index + 1]]
            index += 2
            continue
        if rest and arg.startswith(tuple(f"{o}=" for o in _ROOT_VALUED)):
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI; map library errors to exit 1, configuration errors to 2.

    Usage errors are Typer's own (exit 2, with the usage line).  A command that
    found problems raises ``typer.Exit(1)``.
    """
    command = typer.main.get_command(app)
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        # Not standalone: usage errors come back here and are printed as Click prints
        # them (the usage, the hint, one "Error:" line), not in Typer's 5-6 line box,
        # whose module (rich.markdown, rich.traceback) costs a usage error ~0.3 s of CPU.
        code = command.main(
            args=hoist_root_options(args),
            prog_name="tenios-archive",
            standalone_mode=False,
        )
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Abort:
        err_console.print("Aborted!")
        sys.exit(1)
    except (ConfigError, SchemaNotCurrent) as exc:
        err_console.print(f"[bold red]configuration error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
    except ImportFileError as exc:  # bad input: it names the line and column, exit 2
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except TeniosArchiveError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
