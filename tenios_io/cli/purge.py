"""`tenios-archive purge`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `purge` command to the root app."""
