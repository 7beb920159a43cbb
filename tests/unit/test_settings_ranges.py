"""Every numeric setting is range-checked at start-up (issue 25, cases 3 and 9): one line,
exit 2, naming the variable and the allowed range.  On main ``TENIOS_RETENTION_DAYS=3000000``,
``TENIOS_NOT_FOUND_GRACE_HOURS=1e308`` and the like passed and ended a run in a traceback,
and ``TENIOS_RETENTION_DAYS=0`` with a lock mode archived every recording without a lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tenios_io.config import Settings, allowed_range, load_settings
from tenios_io.exceptions import ConfigError
from tenios_io.recording.spool import check_spool_dir
from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("TENIOS_RETENTION_DAYS", "3000000", "a whole number from 0 to 36,500"),
        ("TENIOS_RETENTION_DAYS", "-1", "a whole number from 0 to 36,500"),
        ("TENIOS_LEASE_SECONDS", "1e23", "a whole number from 10 to 86,400"),
        ("TENIOS_LEASE_SECONDS", "5", "a whole number from 10 to 86,400"),
        ("TENIOS_NOT_FOUND_GRACE_HOURS", "1e308", "a number from 0 to 8,760"),
        ("TENIOS_NOT_FOUND_GRACE_HOURS", "nan", "a number from 0 to 8,760"),
        ("TENIOS_NOT_FOUND_GRACE_HOURS", "inf", "a number from 0 to 8,760"),
        ("TENIOS_MAX_ATTEMPTS", "0", "a whole number from 1 to 1,000"),
        ("TENIOS_API_RATE_LIMIT", "1e9", "a number above 0 and at most 10,000"),
        ("TENIOS_SFTP_SETTLE_SECONDS", "-3", "a number from 0 to 86,400"),
        ("TENIOS_VERIFY_CYCLE_DAYS", "100000", "a whole number from 1 to 3,650"),
        ("TENIOS_ALERT_OLDEST_DUE_HOURS", "0", "a number above 0 and at most 8,760"),
        ("TENIOS_MULTIPART_THRESHOLD_MB", "1", "a whole number from 5 to 5,120"),
    ],
)
def test_a_number_out_of_range_is_one_line_naming_it_and_the_range(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli("ledger", "list")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"configuration error: invalid setting {variable}: must be {allowed} (got {value!r})"
    )
    assert result.stdout == ""


def test_every_numeric_setting_has_a_documented_range() -> None:
    numeric = [
        name
        for name, field in Settings.model_fields.items()
        if field.annotation in (int, float, int | None, float | None)
    ]
    assert len(numeric) >= 9
    assert {name: allowed_range(name) for name in numeric if allowed_range(name) is None} == {}
    readme = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for name in numeric:
        assert f"`TENIOS_{name.upper()}`" in readme.split("## Settings ranges")[1], name


@pytest.mark.parametrize("mode", ["compliance", "governance"])
def test_zero_retention_days_with_a_lock_mode_is_a_settings_error(mode: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(retention_mode=mode, retention_days=0)
    message = str(raised.value)
    assert message.startswith("invalid setting TENIOS_RETENTION_DAYS: must be at least 1 with")
    assert f"TENIOS_RETENTION_MODE={mode}" in message and "\n" not in message
    assert load_settings(retention_mode="none", retention_days=0).retention_days == 0


def test_several_bad_settings_are_still_one_line() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(lease_seconds=1, max_attempts=0)
    message = str(raised.value)
    assert "\n" not in message
    assert "TENIOS_LEASE_SECONDS: must be" in message and "TENIOS_MAX_ATTEMPTS: must be" in message


def test_the_spool_dir_must_be_a_writable_directory(tmp_path: Path) -> None:
    check_spool_dir(None)  # the system temp dir
    check_spool_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    with pytest.raises(ConfigError, match=r"TENIOS_SPOOL_DIR .*/nope does not exist: create it"):
        check_spool_dir(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()  # not created: a typo must not spool elsewhere
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is not a directory") as raised:
        check_spool_dir(afile)
    assert raised.value.variable == "TENIOS_SPOOL_DIR"
