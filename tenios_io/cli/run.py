"""`tenios-archive run ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="run commands.", no_args_is_help=True)
