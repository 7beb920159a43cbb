"""What every command group shares: the CLI state, consoles, settings access."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from tenios_io.config import Settings, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliState:
    """Options of the root command, carried on the Typer context."""

    config_file: Path | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Settings, loaded once per invocation (ConfigError → exit 2 in main)."""
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings


def state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (a default one when run without the root)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def settings(ctx: typer.Context) -> Settings:
    """Shortcut: the settings of this invocation."""
    return state(ctx).settings()
