"""Same-night drop archival (issue 25, case 7): a run that sees drop files still
settling looks again once they have settled and archives them, and a recording whose
file is settling waits for it instead of being fetched from the API.

On main a recording that first appeared on the drop was archived the next night at the
earliest (one sweep per run, two sweeps needed), and a known recording whose file was
settling spent 7 to 8 of its 10 attempts on API 404s within two runs.  Here `run nightly`
runs in this process against a real OpenSSH drop, the simulator over HTTP, moto and a
real ledger (SQLite and PostgreSQL), with a settle time of 2 s: the run's own wait, not
the test's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tenios_io.ledger import NewRecording, State
from tests.acceptance.conftest import ArchiveWorld, attach_drop, deliver
from tests.fixtures.cli import CliResult
from tests.fixtures.sshd import SftpServer

pytestmark = pytest.mark.slow


@pytest.fixture
def drop(
    no_prefect_world: ArchiveWorld, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = attach_drop(no_prefect_world, sftp_server, monkeypatch)
    monkeypatch.setenv("TENIOS_SFTP_SETTLE_SECONDS", "2")
    monkeypatch.setenv(
        "TENIOS_SFTP_PATTERN", r"^\d{8}_[0-9a-f-]{36}_(?P<recording_uuid>[0-9a-f-]{36})\.wav$"
    )
    return path


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """One summary row, one line: a table cell wrapped at 80 columns splits the words
    the assertions look for across the row's lines."""
    from tenios_io.cli._common import console

    monkeypatch.setattr(console, "_width", 1000)


def name(world: ArchiveWorld, uuid: str) -> str:
    """The date_call_recording names of the issue's measurement."""
    return f"20261207_{world.sim.recording(uuid).call_uuid}_{uuid}.wav"


def test_new_drop_files_are_archived_the_same_night(
    no_prefect_world: ArchiveWorld, drop: Path, cli: Callable[..., CliResult]
) -> None:
    world = no_prefect_world
    [from_api] = world.sim.seed(1)
    world.register([from_api])
    on_drop = world.sim.seed(2, ready=False)  # only the drop has them
    for uuid in on_drop:
        deliver(world, drop, uuid, name(world, uuid), age=0)  # just delivered

    result = cli("run", "nightly")

    assert result.exit_code == 0, result.output
    assert "second look once settled" in result.words
    ledger = world.ledger()
    try:
        for uuid in [from_api, *on_drop]:
            assert ledger.get(uuid).state is State.ARCHIVED, uuid
        assert {ledger.get(u).source for u in on_drop} == {
            f"sftp:{drop / name(world, u)}" for u in on_drop
        }
    finally:
        ledger.engine.dispose()
    assert not [r for r in world.sim.requests if r.recording_uuid in on_drop]


def test_a_known_recording_waits_for_its_settling_file_not_the_api(
    no_prefect_world: ArchiveWorld, drop: Path, cli: Callable[..., CliResult]
) -> None:
    """The ids were imported first (no path); their files arrive on the drop."""
    world = no_prefect_world
    known = world.sim.seed(3, ready=False)  # TENIOS would answer 404
    ledger = world.ledger()
    ledger.register([NewRecording(u, call_uuid=world.sim.recording(u).call_uuid) for u in known])
    ledger.engine.dispose()
    for uuid in known:
        deliver(world, drop, uuid, name(world, uuid), age=0)

    result = cli("run", "nightly")

    assert result.exit_code == 0, result.output
    assert "held for their file (not fetched) 3" in result.words
    ledger = world.ledger()
    try:
        for uuid in known:
            rec = ledger.get(uuid)
            assert rec.state is State.ARCHIVED and rec.source.startswith("sftp:"), uuid
            assert rec.attempts == 1  # the one that archived it: none spent on the API
    finally:
        ledger.engine.dispose()
    assert not [r for r in world.sim.requests if r.recording_uuid in known]


def test_files_settling_later_than_the_run_waits_are_named_and_held(
    no_prefect_world: ArchiveWorld,
    drop: Path,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = no_prefect_world
    monkeypatch.setenv("TENIOS_SFTP_SETTLE_SECONDS", "3600")  # far beyond the run's wait
    [known] = world.sim.seed(1, ready=False)
    world.register([known])
    deliver(world, drop, known, name(world, known), age=0)

    result = cli("run", "nightly")

    assert result.exit_code == 0, result.output
    assert "1 drop file(s) still settling" in result.words
    assert "the next run archives them" in result.words
    ledger = world.ledger()
    try:
        rec = ledger.get(known)
        assert (rec.state, rec.attempts) == (State.PENDING, 0)
        assert rec.next_attempt_at is not None and rec.next_attempt_at > ledger.clock_now()
    finally:
        ledger.engine.dispose()
    assert not world.sim.requests  # not fetched from the API meanwhile
