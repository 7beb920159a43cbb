"""Every command's --help reads cleanly (issue 12 item 9): a flag shows no ``<bool>``
placeholder, and prose paragraphs are not broken where the docstring's source line
ended (they used to break mid-sentence at any terminal width)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import typer
from typer import _click as click
from typer.core import TyperGroup

from tenios_io.cli import app
from tenios_io.cli._help import reflow
from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]


def _commands() -> Iterator[tuple[tuple[str, ...], click.Command]]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)

    def walk(
        path: tuple[str, ...], command: click.Command
    ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
        yield path, command
        if isinstance(command, TyperGroup):
            for name in sorted(command.commands):
                yield from walk((*path, name), command.commands[name])

    yield (), root
    for name in sorted(root.lazy):  # type: ignore[attr-defined]
        yield from walk((name,), root.load(name))  # type: ignore[attr-defined]


def _prose(help_text: str) -> list[str]:
    """The paragraphs the help should print on one line each."""
    return [
        p
        for p in reflow(help_text).split("\n\n")
        if "\n" not in p and "[" not in p and "\b" not in p and len(p) < 250
    ]


def test_reflow_joins_prose_and_keeps_layout() -> None:
    kept = "- a list\n- kept\n\n\b\nA\nB"
    text = f"First line\nstill first.\n\nExit 0 when done,\n1 otherwise.\n\n{kept}"
    assert reflow(text) == f"First line still first.\n\nExit 0 when done, 1 otherwise.\n\n{kept}"


def test_every_help_screen_has_no_bool_placeholders_or_stray_breaks(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    checked = 0
    for path, command in _commands():
        shown = cli(*path, "--help")
        assert shown.exit_code == 0, (path, shown.output)
        assert "<bool>" not in shown.stdout, path
        lines = [line.strip(" │") for line in shown.stdout.splitlines()]
        for paragraph in _prose(command.help or ""):
            assert paragraph in lines, (path, paragraph)
            checked += 1
    assert checked > 40  # the prose of most commands was looked at, not skipped


def test_usage_errors_are_clicks_lines_not_a_box(cli: Cli) -> None:
    """Issue 27: a typer usage error was a 5-6 line box; now the usage, the hint and
    one error line, at any width."""
    for args, error in (
        (("run", "nightly", "--concurrency", "0"), "Error: Invalid value for '--concurrency'"),
        (("ledger", "show"), "Error: Missing argument 'UUID'."),
        (("nosuch",), "Error: No such command 'nosuch'."),
    ):
        result = cli(*args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 3, result.stderr
        assert lines[0].startswith("Usage: tenios-archive") and lines[1].startswith("Try ")
        assert lines[2].startswith(error)
        assert not any(c in result.stderr for c in "╭│╰")
