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
    ctx = typer.Context(command)
    for name in command.list_commands(ctx):  # type: ignore[attr-defined]
        sub = command.get_command(ctx, name)  # type: ignore[attr-defined]  # imports it
        subs = getattr(sub, "commands", None)
        names += [f"{name} {s}" for s in subs] if subs else [name]
    missing = [n for n in names if f"`{n}" not in README and f"/ `{n}" not in README]
    assert missing == []


def test_both_commands_and_exit_codes_are_documented() -> None:
    assert "make demo" in README and "make test" in README
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in README


def test_root_help_imports_no_command_module() -> None:
    """`tenios-archive --help` lists every command without importing any (issue 12
    item 7: Prefect, boto3, paramiko, SQLAlchemy only in the commands that use them)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from tenios_io.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('prefect', 'boto3', 'paramiko', 'sqlalchemy', 'moto', 'pydantic', 'alembic')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('tenios_io.cli.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[-2] == "[]"
    assert out[-1] == "['tenios_io.cli._common', 'tenios_io.cli._help', 'tenios_io.cli._lazy']"
    for name in ("ledger", "audit", "run", "purge", "demo"):
        assert name in "\n".join(out)
