"""The `db`, `ledger` and `audit verify-chain` commands through the real entry point."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tenios_io.ledger import create_ledger_engine
from tenios_io.ledger.tables import custody_events
from tests.fixtures.cli import CliResult

A = "8101fcb3-3843-4db3-9829-f7ab586625fe"
B = "f57135d7-2e5c-44dd-bd82-bc1693596260"
CALL = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"
Cli = Callable[..., CliResult]


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> str:
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    assert cli("db", "upgrade").exit_code == 0
    return sqlite_url


def test_unmigrated_database_is_a_configuration_error(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    result = cli("ledger", "list")
    assert result.exit_code == 2 and "db upgrade" in result.stderr
    assert cli("db", "current").exit_code == 1
    assert cli("db", "upgrade").exit_code == 0
    current = cli("db", "current")
    assert current.exit_code == 0 and "(head)" in current.stdout


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", "mysql://x")
    result = cli("ledger", "list")
    assert result.exit_code == 2 and "TENIOS_DATABASE_URL" in result.stderr


def test_config_file_is_read_and_env_wins(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'database_url = "{sqlite_url}"\n')
    monkeypatch.delenv("TENIOS_DATABASE_URL", raising=False)
    assert cli("--config", str(cfg), "db", "upgrade").exit_code == 0
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()
    cfg.write_text('colour = "red"\n')
    bad = cli("--config", str(cfg), "ledger", "list")
    assert bad.exit_code == 2 and "colour" in bad.stderr


def test_add_list_show_export(db: str, cli: Cli, tmp_path: Path) -> None:
    added = cli("ledger", "add", A, B, "--call-uuid", CALL)
    assert added.exit_code == 0 and f"added   {A}" in added.stdout
    again = cli("ledger", "add", A)
    assert again.exit_code == 0 and "unchanged" in again.stdout
    listed = cli("ledger", "list", "--state", "pending")
    assert A in listed.stdout and "pending: 2" in listed.stdout
    shown = cli("ledger", "show", A)
    assert shown.exit_code == 0 and "registered" in shown.stdout and CALL in shown.stdout
    # Issue 27: one field per line, nothing squeezed into 10-character columns.
    assert f"recording {A}" in shown.stdout and "call_uuid" in shown.stdout
    assert any(line.split() == ["state", "pending"] for line in shown.stdout.splitlines())
    assert "#1 registered" in shown.stdout and "│" not in shown.stdout
    as_json = cli("ledger", "show", A, "--json")
    document = json.loads(as_json.stdout)
    assert document["recording"]["recording_uuid"] == A
    assert document["recording"]["call_uuid"] == CALL
    assert [e["event"] for e in document["events"]] == ["registered"]
    assert document["events"][0]["leaf"] is None and document["custody_log"] is None
    exported = cli("ledger", "export")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {r["recording_uuid"] for r in rows} == {A, B}
    for column in (
        "recording_uuid",
        "call_uuid",
        "state",
        "attempts",
        "last_error",
        "sha256",
        "size_bytes",
        "s3_bucket",
        "s3_key",
        "s3_version_id",
        "retention_mode",
        "retain_until",
        "archived_at",
    ):
        assert column in rows[0]
    out = tmp_path / "ledger.jsonl"
    assert cli("ledger", "export", "--format", "jsonl", "--output", str(out)).exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["call_uuid"] for r in lines} == {CALL}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("ledger", "add", "not-a-uuid"), "not a UUID"),
        (("ledger", "show", "123"), "not a UUID"),
        (("ledger", "list", "--state", "done"), "done"),
        (("ledger", "export", "--format", "xml"), "xml"),
        (("ledger", "requeue"), "either UUIDs or --state"),
        (("ledger", "import", "/nonexistent/file.csv"), "does not exist"),
    ],
)
def test_bad_input_is_a_usage_error(db: str, cli: Cli, args: tuple[str, ...], needle: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and needle in result.output


def test_import_is_all_or_nothing_and_rerunnable(db: str, cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"recording_uuid,recorded_at\n{A},2024-01-02\n{B},yesterday\n")
    result = cli("ledger", "import", str(bad))
    assert result.exit_code == 2  # bad input (was 1 before issue 12)
    assert "line 3, column recorded_at" in result.stderr
    assert "pending" not in cli("ledger", "list").stdout
    good = tmp_path / "good.txt"
    good.write_text("".join(f"{i:08x}-0000-4000-8000-000000000000\n" for i in range(2500)))
    first = cli("ledger", "import", str(good))
    assert first.exit_code == 0 and "2,500 added" in first.stdout
    second = cli("ledger", "import", str(good))
    assert "0 added, 2,500 already known" in second.stdout


def test_requeue_failed(db: str, cli: Cli) -> None:
    from tenios_io.ledger import Ledger

    cli("ledger", "add", A, B)
    engine = create_ledger_engine(db)
    ledger = Ledger(engine)
    for claim in ledger.claim_batch(2, lease_seconds=60):
        ledger.fail(claim.recording_uuid, claim.lease_token, "access denied")
    engine.dispose()
    refused = cli("ledger", "requeue", A, B, "--state", "failed")
    assert refused.exit_code == 2
    done = cli("ledger", "requeue", "--state", "failed")
    assert done.exit_code == 0 and "requeued 2" in done.stdout
    assert cli("ledger", "requeue", A).exit_code == 1


def test_verify_chain_names_the_edited_event(db: str, cli: Cli) -> None:
    cli("ledger", "add", A, B)
    ok = cli("audit", "verify-chain")
    # The chain verifies; with no bucket the checkpoints were not checked, so not exit 0
    # (issue 12 item 3; this asserted 0 before).
    assert ok.exit_code == 2 and "OK: 2 events" in ok.stdout
    engine = create_ledger_engine(db)
    with engine.begin() as conn:
        conn.execute(
            custody_events.update()
            .where(custody_events.c.seq == 2)
            .values(details='{"call_uuid":null}')
        )
    engine.dispose()
    broken = cli("audit", "verify-chain")
    assert broken.exit_code == 1 and "event 2" in broken.stderr and B in broken.stderr


def test_help_explains(cli: Cli) -> None:
    result = cli("ledger", "import", "--help")
    assert result.exit_code == 0 and "all-or-nothing" in result.stdout


def test_show_escapes_a_drop_names_control_characters_and_markup(
    db: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 25, case 13: a drop file's name is the recording's source_path.
    from tenios_io.ledger import Ledger, NewRecording

    monkeypatch.setenv("COLUMNS", "400")
    engine = create_ledger_engine(db)
    try:
        name = f"/drop/\x1b[2J[bold]{A}\x07.wav"
        ledger = Ledger(engine, actor="sweep")
        ledger.register([NewRecording(A, source_path=name)])
        ledger.annotate(A, "note", {"path": name}, updates={"last_error": f"cannot read {name}"})
    finally:
        engine.dispose()

    shown = cli("ledger", "show", A)

    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert f"cannot read /drop/\\x1b[2J[bold]{A}\\x07.wav" in shown.stdout  # last_error
    assert f'"source_path":"/drop/\\u001b[2J[bold]{A}' in shown.stdout  # markup kept as text
    listed = cli("ledger", "list")
    assert listed.exit_code == 0 and "\x1b" not in listed.stdout
