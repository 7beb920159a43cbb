"""`tenios-archive ledger intake` and the runs' preflight draining it, through the real
entry point, with rows a producer inserted with the sqlite3 client."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tenios_io.config import load_settings
from tenios_io.ledger import State, open_ledger
from tests.fixtures.cli import CliResult
from tests.fixtures.producer import insert_values, run_sql

Cli = Callable[..., CliResult]


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> str:
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("COLUMNS", "250")
    assert cli("db", "upgrade").exit_code == 0
    return sqlite_url


def test_intake_shows_pending_then_rejected_rows(db: str, cli: Cli) -> None:
    good = str(uuid.uuid4())
    done = run_sql(
        db,
        [insert_values([(good, None, None, "pbx-7")]), insert_values([("abc", None, None, "crm")])],
    )
    assert done.returncode == 0, done.stderr

    pending = cli("ledger", "intake")
    assert pending.exit_code == 0, pending.output
    assert good in pending.stdout and "pbx-7" in pending.stdout and "abc" in pending.stdout
    assert "pending: 2  rejected: 0" in pending.stdout

    with open_ledger(load_settings()) as ledger:
        assert ledger.drain_intake().to_dict() == {"registered": 1, "known": 0, "rejected": 1}
        assert ledger.get(good).state is State.PENDING

    after = cli("ledger", "intake")
    assert good not in after.stdout and "pending: 0  rejected: 1" in after.stdout
    rejected = cli("ledger", "intake", "--rejected")
    assert rejected.exit_code == 0
    assert "'abc' is not a UUID" in rejected.stdout and "crm" in rejected.stdout
    assert good not in rejected.stdout


def test_intake_on_an_unmigrated_database_is_a_configuration_error(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    result = cli("ledger", "intake")
    assert result.exit_code == 2 and "db upgrade" in result.stderr


def test_a_runs_preflight_drains_the_intake_and_says_so(
    db: str,
    moto_server: str,
    plain_bucket: str,
    simulator_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tenios_io.cli._running import preflight
    from tenios_io.run.pipeline import open_pipeline
    from tests.fixtures.moto import FAKE_CREDENTIALS

    for key, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_ACCESS_KEY": "k-123",
        "TENIOS_S3_BUCKET": plain_bucket,
        "TENIOS_API_URL": simulator_url,  # the preflight connects to it
    }.items():
        monkeypatch.setenv(key, value)
    rows = [(str(uuid.uuid4()), None, None, "pbx-7") for _ in range(2)]
    done = run_sql(db, [insert_values(rows), insert_values([("x", None, None, "pbx-7")])])
    assert done.returncode == 0, done.stderr

    with open_pipeline(load_settings(), actor="cli:preflight", concurrency=1) as pipeline:
        checked = preflight(pipeline)

    assert checked.due == 2
    out = capsys.readouterr().out
    assert "intake: 2 new, 0 already known, 1 rejected" in out and "--rejected" in out
    with open_ledger(load_settings()) as ledger:
        assert ledger.intake_counts() == {"pending": 0, "rejected": 1}


def test_intake_prints_a_producers_escape_codes_and_markup_as_text(db: str, cli: Cli) -> None:
    # Issue 25, case 13: a producer's ANSI sequences never reach the operator's terminal.
    hostile = "\x1b[31mred\x1b[0m[bold]loud[/bold]\x07"
    done = run_sql(
        db,
        [
            insert_values([(str(uuid.uuid4()), None, None, hostile)]),
            insert_values([("\x1b]0;title\x07", None, None, hostile)]),
        ],
    )
    assert done.returncode == 0, done.stderr

    pending = cli("ledger", "intake")
    assert pending.exit_code == 0, pending.output
    assert "\x1b" not in pending.stdout and "\x07" not in pending.stdout
    assert "\\x1b[31mred\\x1b[0m[bold]loud[/bold]\\x07" in pending.stdout.replace("\n", "")

    with open_ledger(load_settings()) as ledger:
        assert ledger.drain_intake().rejected == 1
    rejected = cli("ledger", "intake", "--rejected")
    assert rejected.exit_code == 0
    assert "\x1b" not in rejected.stdout and "is not a UUID" in rejected.stdout
