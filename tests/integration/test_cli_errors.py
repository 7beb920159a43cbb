"""Bad input is a one-line error naming the setting or argument, exit 2, never a
traceback (issue 12, items 5 and 6), through the real entry point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tenios_io.config import Settings, load_settings
from tests.fixtures.cli import CliResult

A = "8101fcb3-3843-4db3-9829-f7ab586625fe"
Cli = Callable[..., CliResult]


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> str:
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    assert cli("db", "upgrade").exit_code == 0
    return sqlite_url


def refused(result: CliResult, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.words, (needle, result.output)


@pytest.mark.parametrize(
    "command",
    [("audit", "reconcile"), ("audit", "verify", "--all"), ("run", "nightly"), ("ledger", "list")],
)
def test_a_bad_bucket_name_is_a_setting_error(
    db: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("TENIOS_S3_BUCKET", "My_Bad Bucket!")
    monkeypatch.setenv("TENIOS_ACCESS_KEY", "k")
    refused(cli(*command), "TENIOS_S3_BUCKET", "not a bucket name")


@pytest.mark.parametrize(
    "command", [("audit", "reconcile"), ("audit", "verify", "--all"), ("run", "nightly")]
)
def test_a_missing_bucket_is_exit_2(
    db: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.delenv("TENIOS_S3_BUCKET", raising=False)
    monkeypatch.setenv("TENIOS_ACCESS_KEY", "k")
    refused(cli(*command), "TENIOS_S3_BUCKET")


def test_postgres_urls_mean_psycopg_and_other_drivers_are_refused() -> None:
    for given in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"):
        assert load_settings(database_url=given).database_url == "postgresql+psycopg://u@h/db"
    with pytest.raises(Exception, match="asyncpg driver is not supported"):
        load_settings(database_url="postgresql+asyncpg://u:pw@h/db")
    for memory in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(Exception, match="in-memory"):
            load_settings(database_url=memory)
    assert Settings(database_url="sqlite:///x.db").database_url == "sqlite:///x.db"


def test_read_only_commands_do_not_create_the_ledger_file(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "nowhere.db"
    monkeypatch.setenv("TENIOS_DATABASE_URL", f"sqlite:///{ledger}")
    for command in (("ledger", "list"), ("audit", "verify-chain"), ("ledger", "show", A)):
        refused(cli(*command), str(ledger), "db upgrade")
    assert not ledger.exists()
    assert cli("db", "upgrade").exit_code == 0 and ledger.exists()


def test_a_mistyped_variable_is_reported(
    db: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENIOS_S3_BUKET", "archive")
    refused(cli("ledger", "list"), "TENIOS_S3_BUKET", "did you mean TENIOS_S3_BUCKET")


def test_config_works_after_the_subcommand_too(
    db: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENIOS_DATABASE_URL")
    config = tmp_path / "c.toml"
    config.write_text(f'database_url = "{db}"\n')
    for args in (
        ("--config", str(config), "ledger", "list"),
        ("ledger", "list", "--config", str(config)),
        ("ledger", "list", f"--config={config}"),
    ):
        result = cli(*args)
        assert result.exit_code == 0 and "the ledger is empty" in result.stdout, result.output


@pytest.mark.parametrize(
    "args",
    [
        ("ledger", "export", "--output", "/nonexistent/x.csv"),
        ("audit", "export-events", "--output", "/proc/x.jsonl"),
    ],
)
def test_an_output_that_cannot_be_written_is_a_usage_error(
    db: str, cli: Cli, args: tuple[str, ...]
) -> None:
    refused(cli(*args), "--output", "cannot write")


def test_import_errors_quote_little_count_and_hint(db: str, cli: Cli, tmp_path: Path) -> None:
    huge = tmp_path / "one-line.txt"
    huge.write_text("x" * 5_000_000 + "\n")
    result = cli("ledger", "import", str(huge))
    refused(result, "line 1 is longer than 4,096 characters")  # not read whole (issue 25)
    assert len(result.output) < 600 and "x" * 100 not in result.output

    header = tmp_path / "header.csv"
    header.write_text(f"uuid\n{A}\n")
    refused(cli("ledger", "import", str(header)), "name the column recording_uuid")

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    refused(cli("ledger", "import", str(empty)), "names no recordings")

    twice = tmp_path / "twice.txt"
    twice.write_text(f"{A}\n{A}\n")
    counted = cli("ledger", "import", str(twice))
    assert counted.exit_code == 0
    assert "2 lines with a recording — 1 added, 0 already known, 1 repeated" in counted.stdout
