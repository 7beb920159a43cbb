"""The fault matrix, continued (issue 11): faults of the SFTP drop and of the ledger
database, each through a whole nightly run against a real OpenSSH drop, the
simulator over HTTP, moto and a real ledger.  Per fault: nothing wrong is archived,
nothing is lost, a run-wide error fails nothing, the run says what happened.

Run with ``-s`` to see the rows (they are in the README's reliability section, after
the API and S3 rows of test_fault_matrix.py).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flows.nightly import nightly_archive
from tenios_io import crashpoints
from tenios_io.ledger import NewRecording, State
from tenios_io.sftp import source as sftp_source
from tests.acceptance.conftest import ArchiveWorld, deliver
from tests.fixtures.cli import CliResult
from tests.fixtures.fault_table import FaultTable
from tests.fixtures.sshd import SftpServer, _write_key

FAULTS = (
    "SFTP drop down at start",
    "SFTP drop file growing",
    "SFTP authentication failure",
    "PostgreSQL restart mid-run",
)
"""The table's rows, in order (the last backend's, when a fault runs on SQLite and
PostgreSQL)."""


def _row(
    fault_table: FaultTable,
    fault: str,
    outcome: str,
    world: ArchiveWorld,
    uuids: list[str],
    exit_code: int,
) -> None:
    ledger = world.ledger()
    try:
        states = Counter(ledger.get(u).state.value for u in ledger_ids(world, uuids))
    finally:
        ledger.engine.dispose()
    objects = sum(1 for key in world.versions() if key.endswith(".wav"))
    described = ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "nothing registered"
    row = f"| {fault} | {outcome} | {objects} | {described} | {exit_code} |"
    fault_table(FAULTS.index(fault), fault, row)


def ledger_ids(world: ArchiveWorld, uuids: list[str]) -> list[str]:
    ledger = world.ledger()
    try:
        known = {r.recording_uuid for r in ledger.find()}
    finally:
        ledger.engine.dispose()
    return [u for u in uuids if u in known]


def assert_whole_or_pending(world: ArchiveWorld, uuids: list[str]) -> None:
    """Nothing wrong is archived, nothing is lost (pending, no attempt spent)."""
    ledger = world.ledger()
    versions = world.versions()
    try:
        for u in ledger_ids(world, uuids):
            rec = ledger.get(u)
            if rec.state is State.ARCHIVED:
                assert rec.sha256 == world.sim.expected_sha256(u)
                assert rec.s3_key and versions.get(rec.s3_key) == 1
            else:
                assert rec.state is State.PENDING and rec.attempts == 0, (u, rec.state)
        assert ledger.verify_chain().ok
    finally:
        ledger.engine.dispose()


def register_with_paths(world: ArchiveWorld, drop: Path, uuids: list[str]) -> None:
    """As an earlier sweep left them: registered with their drop paths."""
    ledger = world.ledger()
    ledger.register(
        [
            NewRecording(
                u, call_uuid=world.sim.recording(u).call_uuid, source_path=str(drop / f"{u}.wav")
            )
            for u in uuids
        ]
    )
    ledger.engine.dispose()


@pytest.mark.slow
def test_drop_down_at_start(
    world: ArchiveWorld,
    drop: Path,
    sftp_server: SftpServer,
    monkeypatch: pytest.MonkeyPatch,
    fault_table: FaultTable,
) -> None:
    uuids = world.sim.seed(3)
    for u in uuids:
        deliver(world, drop, u, f"{u}.wav")
    register_with_paths(world, drop, uuids)
    connects: list[object] = []
    real = sftp_source.SftpSource.from_settings.__func__  # type: ignore[attr-defined]

    def counted(cls: type, settings: Any, **options: Any) -> Any:
        connects.append(settings)
        return real(cls, settings, **options)

    monkeypatch.setattr(sftp_source.SftpSource, "from_settings", classmethod(counted))
    sftp_server.stop()

    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert len(connects) == 1  # tried once for the whole run, not once per recording
    assert "down for this run" in result["sweep"]["unavailable"]
    assert result["per_source"] == {"api": 3}  # the API served every recording
    assert all((drop / f"{u}.wav").exists() for u in uuids)  # nothing released blind
    assert_whole_or_pending(world, uuids)
    _row(fault_table, "SFTP drop down at start", "drop tried once; API served all", world, uuids, 0)

    sftp_server.start()  # the next run, with the drop back, releases what was archived
    again = nightly_archive(max_wait_seconds=30)
    assert again["exit_code"] == 0 and again["sweep"]["released"] == 3
    assert not any((drop / f"{u}.wav").exists() for u in uuids)


@pytest.mark.slow
def test_drop_file_growing(world: ArchiveWorld, drop: Path, fault_table: FaultTable) -> None:
    stable, growing = world.sim.seed(2)
    deliver(world, drop, stable, f"{stable}.wav")
    whole = world.sim.expected_bytes(growing)
    path = deliver(world, drop, growing, f"{growing}.wav")
    path.write_bytes(whole[: len(whole) // 2])  # sighted at half its length two minutes ago,
    world.sighted(path, age=120)
    path.write_bytes(whole)  # now longer: still being written as far as anyone can tell

    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert result["sweep"]["ready"] == 1 and result["sweep"]["unsettled"] == 1
    assert ledger_ids(world, [stable, growing]) == [stable]  # the growing file: not yet
    assert path.read_bytes() == whole  # untouched
    assert_whole_or_pending(world, [stable, growing])
    _row(
        fault_table,
        "SFTP drop file growing",
        "left alone until unchanged",
        world,
        [stable, growing],
        0,
    )


@pytest.mark.slow
def test_sftp_authentication_failure(
    world: ArchiveWorld,
    drop: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
    fault_table: FaultTable,
) -> None:
    uuids = world.sim.seed(3)
    for u in uuids:
        deliver(world, drop, u, f"{u}.wav")
    register_with_paths(world, drop, uuids)
    stranger = world.tmp / "not_authorized_ed25519"
    _write_key(stranger)  # a valid key the server does not know
    monkeypatch.setenv("TENIOS_SFTP_KEY_FILE", str(stranger))

    result = cli("run", "nightly")
    assert result.exit_code == 2
    assert "TENIOS_SFTP_KEY_FILE" in result.stderr and "refused" in result.stderr
    assert world.versions() == {}  # stopped before any work
    assert_whole_or_pending(world, uuids)
    assert all((drop / f"{u}.wav").exists() for u in uuids)
    _row(fault_table, "SFTP authentication failure", "run stopped at preflight", world, uuids, 2)


@pytest.mark.slow
def test_postgresql_restart_mid_run(
    pg_world: ArchiveWorld, monkeypatch: pytest.MonkeyPatch, fault_table: FaultTable
) -> None:
    """Every connection of the run to PostgreSQL is cut after the first fetch (what a
    server restart does to its clients); the run carries on or stops cleanly, and the
    next run ends with each recording archived exactly once."""
    uuids = pg_world.sim.seed(3)
    pg_world.register(uuids)
    admin = sa.create_engine(pg_world.database_url)
    cut: list[int] = []

    def reached(name: str) -> None:
        if name == "after_fetch" and not cut:
            with admin.connect() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            cut.append(int(killed))

    monkeypatch.setattr(crashpoints, "reached", reached)
    first = nightly_archive(max_wait_seconds=30, concurrency=1)
    admin.dispose()
    assert cut and cut[0] >= 1  # the run's connections were cut
    assert first["exit_code"] in (0, 1)
    if first["exit_code"] == 1:  # stopped: it says the ledger was the cause
        assert "ledger" in str(first.get("stopped", first)).lower()
    ledger = pg_world.ledger()
    try:
        # Nothing failed or given up: archived, pending, or claimed with the lease left
        # to expire (the ledger could not take the claim back) — the next run's work.
        left = {ledger.get(u).state for u in uuids}
        assert left <= {State.ARCHIVED, State.PENDING, State.IN_PROGRESS}, left
        assert all(ledger.get(u).sha256 in (None, pg_world.sim.expected_sha256(u)) for u in uuids)
    finally:
        ledger.engine.dispose()
    outcome = (
        "connections re-opened, run finished"
        if first["exit_code"] == 0
        else "run stopped (ledger unavailable), next run finished"
    )
    monkeypatch.setattr(crashpoints, "reached", lambda name: None)
    second = nightly_archive(max_wait_seconds=60)
    assert second["exit_code"] == 0
    ledger = pg_world.ledger()
    try:
        assert all(ledger.get(u).state is State.ARCHIVED for u in uuids)
    finally:
        ledger.engine.dispose()
    assert_whole_or_pending(pg_world, uuids)
    _row(fault_table, "PostgreSQL restart mid-run", outcome, pg_world, uuids, first["exit_code"])


def test_the_table_has_a_row_per_fault() -> None:
    """Each fault of the table is written by exactly one test of this module (the
    session prints the table with ``-s``), read from this module's ``_row`` calls."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    written = [
        node.args[1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_row"
        and isinstance(node.args[1], ast.Constant)
    ]
    assert sorted(written) == sorted(FAULTS)
