"""The demo's drop naming and its TENIOS_SFTP_PATTERN agree (issue 12, item 1)."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime

from tenios_io.config import Settings
from tenios_io.simulator.demo import DEMO_DROP_NAMING, DEMO_SFTP_PATTERN

RECORDING = "6f1c2a4e-8b1d-4c3a-9e2f-0a1b2c3d4e5f"
CALL = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"


def test_the_pattern_takes_the_recording_not_the_call() -> None:
    name = DEMO_DROP_NAMING.format(
        recording_uuid=RECORDING, call_uuid=CALL, date=datetime(2026, 12, 2, tzinfo=UTC)
    )
    match = re.search(Settings(sftp_pattern=DEMO_SFTP_PATTERN).sftp_pattern, name)
    assert match is not None
    assert match.group("recording_uuid") == RECORDING
    assert match.group("call_uuid") == CALL


def test_the_pattern_survives_the_demo_toml_quoting() -> None:
    # The demo writes it as a TOML literal string: no escapes are interpreted.
    parsed = tomllib.loads(f"sftp_pattern = '{DEMO_SFTP_PATTERN}'\n")
    assert parsed["sftp_pattern"] == DEMO_SFTP_PATTERN
