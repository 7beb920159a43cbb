"""Help screens as a reader expects them (issue 12 item 9).

Typer's help panel prints a type for every option, flags included (``--json <bool>``,
though a flag takes no value), and keeps the line breaks of a docstring's later
paragraphs, so they break mid-sentence wherever the source wrapped them.  Two small
corrections, applied to every command as the CLI loads it:

- a flag shows no type (Typer's own rule for the plain help, where it skips flags);
- the paragraphs of a command's help are re-flowed: single line breaks become
  spaces, unless the paragraph is laid out on purpose (Click's ``\\b`` marker, or
  lines that start with ``-``, ``|`` or indentation: lists, tables, examples).
"""

from __future__ import annotations

import inspect
from typing import Any

from typer import _click as click
from typer.core import TyperGroup, TyperOption

_typer_display_type_rich = TyperOption.display_type_rich


def _display_type_rich(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag and self.metavar is None:
        return None
    return _typer_display_type_rich(self, ctx)


def show_no_type_for_flags() -> None:
    """Flags (``--json``, ``--deep/--no-deep``, ``--help``) show no ``<bool>`` type."""
    TyperOption.display_type_rich = _display_type_rich  # type: ignore[method-assign]


def reflow(text: str) -> str:
    """``text`` with single line breaks inside prose paragraphs made spaces."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(_reflow_paragraph(p) for p in paragraphs)


def _reflow_paragraph(paragraph: str) -> str:
    lines = paragraph.split("\n")
    laid_out = paragraph.startswith("\b") or any(
        line.startswith((" ", "\t", "-", "|", "*")) for line in lines
    )
    return paragraph if laid_out else " ".join(line.strip() for line in lines)


def tidy_help(command: click.Command) -> None:
    """Re-flow the help of ``command`` and of every command under it."""
    if command.help:
        command.help = reflow(command.help)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            tidy_help(sub)
