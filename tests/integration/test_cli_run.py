"""`run nightly` / `run backfill` refuse to start, with exit 2 and the reason, when the
preflight fails: nothing is claimed and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS

Cli = Callable[..., CliResult]


@pytest.fixture
def configured(
    sqlite_url: str,
    moto_server: str,
    plain_bucket: str,
    simulator_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    for key, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": sqlite_url,
        "TENIOS_ACCESS_KEY": "k-123",
        "TENIOS_S3_BUCKET": plain_bucket,
        "TENIOS_API_URL": simulator_url,  # the preflight connects to it
    }.items():
        monkeypatch.setenv(key, value)
    return sqlite_url


@pytest.mark.parametrize(
    ("unset", "needle"),
    [("TENIOS_ACCESS_KEY", "TENIOS_ACCESS_KEY"), ("TENIOS_S3_BUCKET", "TENIOS_S3_BUCKET")],
)
def test_missing_setting(
    configured: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, unset: str, needle: str
) -> None:
    assert cli("db", "upgrade").exit_code == 0
    monkeypatch.delenv(unset)
    result = cli("run", "nightly")
    assert result.exit_code == 2 and needle in result.stderr


def test_database_not_migrated(configured: str, cli: Cli) -> None:
    result = cli("run", "nightly")
    assert result.exit_code == 2 and "db upgrade" in result.stderr


def test_bucket_missing(configured: str, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").exit_code == 0
    monkeypatch.setenv("TENIOS_S3_BUCKET", "no-such-bucket-tenios")
    result = cli("run", "nightly")
    assert result.exit_code == 2
    assert "preflight" in result.stderr and "no-such-bucket-tenios" in result.stderr


def test_custody_key_file_missing(
    configured: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli("db", "upgrade").exit_code == 0
    monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(tmp_path / "no.key"))
    result = cli("run", "nightly")
    assert result.exit_code == 2 and "TENIOS_CUSTODY_KEY_FILE" in result.stderr
    assert "audit keygen" in result.stderr


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_spool_dir_unusable_stops_the_run_at_start(
    configured: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    # Issue 25, case 9: on main every recording spent its attempts and ended failed.
    assert cli("db", "upgrade").exit_code == 0
    spool = tmp_path / "spool"
    if kind == "a file":
        spool.write_text("x")
    monkeypatch.setenv("TENIOS_SPOOL_DIR", str(spool))
    result = cli("run", "nightly")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"configuration error: TENIOS_SPOOL_DIR {spool} ")
    assert ("does not exist" if kind == "missing" else "is not a directory") in line


def test_without_a_custody_key_runs_stop_at_preflight_naming_keygen(
    configured: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Signed from the first run (issue 27): no TENIOS_CUSTODY_KEY_FILE, no run, unless
    the operator opted out with TENIOS_CUSTODY_UNSIGNED=true."""
    monkeypatch.delenv("TENIOS_CUSTODY_KEY_FILE")
    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0
    hint = [line for line in upgraded.stdout.splitlines() if "audit keygen" in line]
    assert len(hint) == 1 and "TENIOS_CUSTODY_KEY_FILE" in hint[0]
    ids = tmp_path / "ids.txt"
    ids.write_text("0d9c3a52-6a3c-4a8e-9a39-2f8d9c3b1e70\n")
    for args in (("run", "nightly"), ("run", "backfill", str(ids))):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "TENIOS_CUSTODY_KEY_FILE" in lines[0]
        assert "`tenios-archive audit keygen --output " in lines[0]
    listed = cli("ledger", "list", "--json")
    assert listed.exit_code == 0 and "0d9c3a52" not in listed.stdout  # nothing imported
    monkeypatch.setenv("TENIOS_CUSTODY_UNSIGNED", "true")
    assert "audit keygen" not in cli("db", "upgrade").stdout  # opted out: no hint
    opted_out = cli("run", "nightly")
    assert "TENIOS_CUSTODY" not in opted_out.output and opted_out.exit_code == 0, opted_out.output


def test_backfill_with_a_bad_file_imports_nothing(
    configured: str, cli: Cli, tmp_path: Path
) -> None:
    assert cli("db", "upgrade").exit_code == 0
    bad = tmp_path / "ids.txt"
    bad.write_text("8101fcb3-3843-4db3-9829-f7ab586625fe\nnot-a-uuid\n")
    result = cli("run", "backfill", str(bad))
    assert result.exit_code == 2 and "line 2" in result.stderr  # bad input (was 1)
    assert "the ledger is empty" in cli("ledger", "list").stdout


def test_usage_errors(cli: Cli) -> None:
    assert cli("run", "nightly", "--concurrency", "0").exit_code == 2
    assert cli("run", "nightly", "--in-flight", "0").exit_code == 2
    assert cli("run", "backfill", "--in-flight", "1025", "/no/such/file").exit_code == 2
    assert cli("run", "backfill", "/no/such/file").exit_code == 2
    help_text = cli("run", "nightly", "--help").stdout
    assert "Exit 0" in help_text and "preflight" in help_text


def test_a_run_in_this_process_opens_one_pipeline_and_preflights_once(
    configured: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's preflight and the run share one pipeline (issue 22: it used to open two
    and run the bucket probe, the ledger id, the manifest backfill and the SFTP connect
    twice per run)."""
    import tenios_io.cli._running as cli_run
    from tenios_io.run.pipeline import Pipeline

    opened: list[str] = []
    preflights: list[str] = []
    real_open, real_preflight = cli_run.open_pipeline, Pipeline.preflight

    def counting_open(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        opened.append(str(kwargs.get("actor")))
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    def counting_preflight(self: Pipeline):  # type: ignore[no-untyped-def]
        preflights.append(self.archiver.run_id)
        return real_preflight(self)

    monkeypatch.setattr(cli_run, "open_pipeline", counting_open)
    monkeypatch.setattr(Pipeline, "preflight", counting_preflight)
    assert cli("db", "upgrade").exit_code == 0

    result = cli("run", "nightly")

    assert result.exit_code == 0, result.output
    assert len(opened) == 1 and opened[0].startswith("cli:nightly-archive:")
    assert len(preflights) == 1
