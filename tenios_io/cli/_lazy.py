"""Subcommands imported only when they run, so ``--help`` and light commands start fast.

Each command module pulls in what its commands need (Prefect, boto3, paramiko, moto,
SQLAlchemy …): importing them all costs seconds on every invocation.  Click's documented
answer is a group that resolves subcommands lazily ("Lazily loading subcommands" in
Click's docs); this is that recipe on Typer's group class.  The root's help lists each
lazy command with a help line given here, so listing them imports nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # Typer 0.29 vendors Click; its groups take these types
from typer.core import TyperCommand, TyperGroup

from tenios_io.cli._help import tidy_help


@dataclass(frozen=True)
class LazyCommand:
    """Where a subcommand lives: ``module`` holds ``attribute`` (a Typer app, or a
    function made a command of its own); ``help`` is the root help's one-liner."""

    module: str
    attribute: str
    help: str
    extend: tuple[str, str] | None = None
    """``(module, function)`` called with the loaded Typer app to add commands to it."""


class LazyGroup(TyperGroup):
    """A Typer group whose subcommands in :attr:`lazy` are imported on first use."""

    lazy: dict[str, LazyCommand] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        if self._listing and cmd_name not in self._loaded:
            # The root's help needs only the name and the one-liner.
            entry = self.lazy[cmd_name]
            return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        return self.load(cmd_name)

    def load(self, name: str) -> click.Command:
        """The real command ``name`` (imports its module once)."""
        if name not in self._loaded:
            entry = self.lazy[name]
            target = getattr(importlib.import_module(entry.module), entry.attribute)
            if entry.extend is not None:
                module, function = entry.extend
                getattr(importlib.import_module(module), function)(target)
            if not isinstance(target, typer.Typer):
                single = typer.Typer(add_completion=False)
                single.command(name=name)(target)
                target = single
            command = typer.main.get_command(target)
            tidy_help(command)
            command.name = name
            self._loaded[name] = command
        return self._loaded[name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
