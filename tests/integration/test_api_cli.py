"""`tenios-archive api ...` against the simulator, through the real entry point."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenios_io.api import TeniosClient
from tenios_io.config import load_settings
from tenios_io.ledger import State, open_ledger
from tenios_io.ledger.schema import upgrade
from tenios_io.simulator import RunningSimulator
from tests.fixtures.cli import CliResult
from tests.fixtures.simulator import SIM_ACCESS_KEY

CALL = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"
UNKNOWN = "8101fcb3-3843-4db3-9829-f7ab586625fe"
Cli = Callable[..., CliResult]


@pytest.fixture
def ledger_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    upgrade(sqlite_url)
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    return sqlite_url


@pytest.fixture(autouse=True)
def no_backoff_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The CLI's client retries as usual but records its waits instead of sleeping."""
    waits: list[float] = []

    class RecordingWaits(TeniosClient):
        def __init__(self, http: httpx.Client, access_key: str, **options: Any) -> None:
            super().__init__(http, access_key, sleep=waits.append, **options)

    monkeypatch.setattr("tenios_io.api.TeniosClient", RecordingWaits)  # imported when used
    return waits


def assert_secret_kept(result: CliResult) -> None:
    assert SIM_ACCESS_KEY not in result.output


# -- start ------------------------------------------------------------------------------------


def test_start_prints_the_recording_uuid_and_registers_it(
    cli: Cli, api_env: RunningSimulator, ledger_db: str
) -> None:
    result = cli("api", "start", CALL.upper(), "--no-callee")

    assert result.exit_code == 0, result.output
    recording_uuid = result.stdout.strip()
    recording = api_env.sim.recording(recording_uuid)
    assert recording.call_uuid == CALL
    assert recording.audio.channels == 1
    with open_ledger(load_settings()) as ledger:
        row = ledger.get(recording_uuid)
        events = ledger.events(recording_uuid)
    assert (row.call_uuid, row.state) == (CALL, State.PENDING)
    assert events[0]["actor"] == "cli:api-start"
    # Through the intake, as any producer's recording: the event names the producer.
    assert json.loads(events[0]["details"])["producer"] == "cli:api-start"
    assert "registered" in result.stderr
    assert_secret_kept(result)


def test_start_with_a_malformed_call_uuid_is_a_usage_error(
    cli: Cli, api_env: RunningSimulator
) -> None:
    result = cli("api", "start", "e3163745")
    assert result.exit_code == 2
    assert "not a UUID" in result.output
    assert api_env.sim.requests == []


def test_start_recording_nothing_is_a_usage_error(cli: Cli, api_env: RunningSimulator) -> None:
    result = cli("api", "start", CALL, "--no-caller", "--no-callee")
    assert result.exit_code == 2
    assert "record nothing" in result.output


def test_start_checks_the_ledger_before_starting_at_tenios(
    cli: Cli, api_env: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On main the recording was started at TENIOS, then the command exited 2.
    monkeypatch.setenv("TENIOS_DATABASE_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    result = cli("api", "start", CALL)
    assert result.exit_code == 2
    assert "TENIOS_DATABASE_URL" in result.output
    assert api_env.sim.requests == []


def test_start_when_tenios_is_down_exits_1(
    cli: Cli, api_env: RunningSimulator, ledger_db: str
) -> None:
    api_env.sim.schedule_faults("500")
    result = cli("api", "start", CALL)
    assert result.exit_code == 1
    assert "answered 500" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- stop -------------------------------------------------------------------------------------


def test_stop(cli: Cli, api_env: RunningSimulator) -> None:
    recording_uuid = api_env.sim.add_recording(call_uuid=CALL, ready=False, seconds=1)

    result = cli("api", "stop", recording_uuid, "--call-uuid", CALL)

    assert result.exit_code == 0, result.output
    assert f"stopped {recording_uuid}" in result.stdout
    assert api_env.sim.recording(recording_uuid).stopped_at is not None


def test_stop_unknown_recording_exits_1_with_one_line(cli: Cli, api_env: RunningSimulator) -> None:
    result = cli("api", "stop", UNKNOWN)
    assert result.exit_code == 1
    assert f"recording {UNKNOWN} not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_stop_with_the_wrong_call_names_the_field(cli: Cli, api_env: RunningSimulator) -> None:
    recording_uuid = api_env.sim.add_recording(ready=False, seconds=1)
    result = cli("api", "stop", recording_uuid, "--call-uuid", CALL)
    assert result.exit_code == 1
    assert "invalid field(s): call_uuid" in result.stderr


def test_stop_with_a_malformed_call_uuid_is_a_usage_error(
    cli: Cli, api_env: RunningSimulator
) -> None:
    result = cli("api", "stop", UNKNOWN, "--call-uuid", "nope")
    assert result.exit_code == 2


# -- retrieve ---------------------------------------------------------------------------------


def test_retrieve_writes_the_file_and_prints_size_and_sha256(
    cli: Cli, api_env: RunningSimulator, tmp_path: Path
) -> None:
    recording_uuid = api_env.sim.add_recording(seconds=20, channels=2, faults=["truncate", "503"])
    output = tmp_path / "call.wav"

    result = cli("api", "retrieve", recording_uuid, "--output", str(output))

    assert result.exit_code == 0, result.output
    digest = api_env.sim.expected_sha256(recording_uuid)
    assert hashlib.sha256(output.read_bytes()).hexdigest() == digest
    size = api_env.sim.expected_size(recording_uuid)
    assert f"{size} bytes, sha256 {digest}" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["call.wav"]  # no temp file left
    assert_secret_kept(result)


def test_retrieve_does_not_overwrite_without_force(
    cli: Cli, api_env: RunningSimulator, tmp_path: Path
) -> None:
    recording_uuid = api_env.sim.add_recording(seconds=1)
    output = tmp_path / "call.wav"
    output.write_bytes(b"precious")

    refused = cli("api", "retrieve", recording_uuid, "--output", str(output))
    assert refused.exit_code == 1
    assert "--force" in refused.stderr
    assert output.read_bytes() == b"precious"
    assert api_env.sim.requests == []

    forced = cli("api", "retrieve", recording_uuid, "-o", str(output), "--force")
    assert forced.exit_code == 0, forced.output
    assert output.read_bytes() == api_env.sim.expected_bytes(recording_uuid)


def test_retrieve_failure_leaves_no_file(
    cli: Cli, api_env: RunningSimulator, tmp_path: Path
) -> None:
    recording_uuid = api_env.sim.add_recording(seconds=5, faults=["truncate"] * 5)
    output = tmp_path / "call.wav"

    result = cli("api", "retrieve", recording_uuid, "--output", str(output))

    assert result.exit_code == 1
    assert "cut short" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_retrieve_unknown_recording(cli: Cli, api_env: RunningSimulator, tmp_path: Path) -> None:
    result = cli("api", "retrieve", UNKNOWN, "--output", str(tmp_path / "x.wav"))
    assert result.exit_code == 1
    assert "not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_retrieve_into_a_missing_directory_is_a_usage_error(
    cli: Cli, api_env: RunningSimulator, tmp_path: Path
) -> None:
    result = cli("api", "retrieve", UNKNOWN, "--output", str(tmp_path / "no" / "x.wav"))
    assert result.exit_code == 2
    assert "Invalid value for --output" in result.output


def test_retrieve_needs_output(cli: Cli, api_env: RunningSimulator) -> None:
    assert cli("api", "retrieve", UNKNOWN).exit_code == 2


# -- configuration and secrecy ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("api", "start", CALL), ("api", "stop", UNKNOWN), ("api", "retrieve", UNKNOWN, "-o", "x.wav")],
)
def test_missing_access_key_is_a_configuration_error(
    cli: Cli,
    simulator_server: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:
    monkeypatch.setenv("TENIOS_API_URL", simulator_server.url)
    monkeypatch.delenv("TENIOS_ACCESS_KEY", raising=False)

    result = cli(*args)

    assert result.exit_code == 2
    assert "TENIOS_ACCESS_KEY is not set" in result.stderr
    assert simulator_server.sim.requests == []


def test_wrong_access_key_exits_1_and_is_never_printed(
    cli: Cli,
    simulator_server: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ledger_db: str,  # api start checks the ledger before it starts anything at TENIOS
) -> None:
    wrong = "wrong-key-3b9e77"
    monkeypatch.setenv("TENIOS_API_URL", simulator_server.url)
    monkeypatch.setenv("TENIOS_ACCESS_KEY", wrong)
    recording_uuid = simulator_server.sim.add_recording(seconds=1)

    for args in (
        ("api", "start", CALL),
        ("api", "stop", recording_uuid),
        ("api", "retrieve", recording_uuid, "-o", str(tmp_path / "x.wav")),
    ):
        result = cli(*args)
        assert result.exit_code == 1
        assert "check TENIOS_ACCESS_KEY" in result.stderr
        assert wrong not in result.output
        assert SIM_ACCESS_KEY not in result.output


def test_unreachable_api_exits_1(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, no_backoff_waits: list[float]
) -> None:
    monkeypatch.setenv("TENIOS_API_URL", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("TENIOS_ACCESS_KEY", SIM_ACCESS_KEY)
    result = cli("api", "stop", UNKNOWN)
    assert result.exit_code == 1
    assert "ConnectError" in result.stderr
    assert len(no_backoff_waits) == 4  # five attempts
    assert_secret_kept(result)
