"""What every command group shares: the CLI state, consoles, settings access."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from tenios_io.files import atomic_text_file
from tenios_io.untrusted import printable

if TYPE_CHECKING:  # imported when used: `--help` needs neither pydantic nor SQLAlchemy
    from tenios_io.config import Settings


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
            from tenios_io.config import load_settings

            self._settings = load_settings(self.config_file)
        return self._settings


def state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (a default one when run without the root)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


@contextmanager
def output_file(path: Path | None, *, option: str = "--output") -> Iterator[IO[str]]:
    """Standard output, or a file written under a temporary name and renamed when complete
    (a reader never sees half a file; a failed export leaves nothing behind).  A path
    that cannot be written is a usage error naming ``option`` (exit 2), found before
    any work."""
    if path is None:
        yield sys.stdout
        return
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(atomic_text_file(path))
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {path}: {exc.strerror or exc} (in {path.parent})",
                param_hint=option,
            ) from None
        yield handle


def cli_actor(command: str) -> str:
    """Who the custody events name for a command run by a person: the command, user and host."""
    from tenios_io.ledger.records import default_actor

    return f"cli:{command}:{default_actor()}"


def shown(text: str | None, limit: int | None = None) -> str:
    """Text taken from outside (an S3 key, a drop file name, a producer's row) made safe
    to print with Rich: cut to ``limit`` characters, control and other unprintable
    characters as ``\\x..`` / ``\\u....`` escapes (no terminal escape sequence, no line
    break gets through; tenios_io.untrusted.printable), Rich markup escaped."""
    value = text or ""
    return escape(printable(value if limit is None else value[:limit]))


def settings(ctx: typer.Context) -> Settings:
    """Shortcut: the settings of this invocation."""
    return state(ctx).settings()
