"""`tenios-archive simulator ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="simulator commands.", no_args_is_help=True)
