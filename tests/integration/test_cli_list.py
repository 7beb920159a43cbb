"""`ledger list`: one line per recording at 80 columns, a time column, --since and
--json (issue 12 item 9), against a real SQLite ledger."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.fixtures.cli import CliResult

A = "8101fcb3-3843-4db3-9829-f7ab586625fe"
B = "f57135d7-2e5c-44dd-bd82-bc1693596260"
Cli = Callable[..., CliResult]


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> str:
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("COLUMNS", "80")
    assert cli("db", "upgrade").exit_code == 0
    assert cli("ledger", "add", A, B).exit_code == 0
    return sqlite_url


def test_one_line_per_recording_at_80_columns_with_a_time_column(db: str, cli: Cli) -> None:
    listed = cli("ledger", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert "changed" in lines[1]
    rows = [line for line in lines if A in line or B in line]
    assert len(rows) == 2 and all(len(line) <= 80 and "pending" in line for line in rows)


def test_json_lines_carry_every_column(db: str, cli: Cli) -> None:
    listed = cli("ledger", "list", "--json")
    assert listed.exit_code == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["recording_uuid"] for r in rows} == {A, B}
    assert {"state", "s3_key", "archived_at"} <= set(rows[0])


def test_since_filters_by_the_last_change(db: str, cli: Cli) -> None:
    assert A in cli("ledger", "list", "--since", "2020-01-01").stdout
    future = cli("ledger", "list", "--since", "2099-01-01T00:00")
    assert future.exit_code == 0 and A not in future.stdout
    bad = cli("ledger", "list", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output
