"""`tenios-archive api ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="api commands.", no_args_is_help=True)
