"""The SFTP drop in the run-wide failure policy: a refused login or an unknown host
key stops the run (exit 2); a drop that is down does not (the API serves)."""

from __future__ import annotations

import pytest

from tenios_io.exceptions import ConfigError, HostKeyError, SourceUnavailable
from tenios_io.run.stop import EXIT_CONFIG, run_wide


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("SFTP login refused", variable="TENIOS_SFTP_KEY_FILE"),
        ConfigError("SFTP login refused", variable="TENIOS_SFTP_PASSWORD"),
        HostKeyError("host key of 127.0.0.1:2222 is not known"),
    ],
)
def test_a_refused_sftp_login_stops_the_run(error: Exception) -> None:
    stop = run_wide(error)
    assert stop is not None and stop.exit_code == EXIT_CONFIG
    assert stop.cause == "the SFTP drop refused this archiver"
    assert "TENIOS_SFTP_KEY_FILE" in stop.advice


@pytest.mark.parametrize(
    "error",
    [
        SourceUnavailable("the SFTP drop is down for this run"),
        ConfigError("TENIOS_SFTP_PATTERN is not valid", variable="TENIOS_SFTP_PATTERN"),
    ],
)
def test_a_drop_that_is_down_is_not_run_wide(error: Exception) -> None:
    assert run_wide(error) is None
