"""The README stays true: every setting and every command is documented there."""

from __future__ import annotations

from pathlib import Path

import typer

from tenios_io.cli import app
from tenios_io.config import ENV_PREFIX, Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in Settings.model_fields
        if f"`{ENV_PREFIX}{name.upper()}`" not in README
    ]
    assert missing == []


def test_every_command_is_in_the_readme() -> None:
    command = typer.main.get_command(app)
    names: list[str] = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        subs = getattr(sub, "commands", None)
        names += [f"{name} {s}" for s in subs] if subs else [name]
    missing = [n for n in names if f"`{n}" not in README and f"/ `{n}" not in README]
    assert missing == []


def test_both_commands_and_exit_codes_are_documented() -> None:
    assert "make demo" in README and "make test" in README
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in README
