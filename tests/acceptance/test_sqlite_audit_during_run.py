"""On SQLite, `audit verify-chain` runs while `run nightly` archives: both finish, and
neither waits into the busy timeout (real processes; simulator with latency, moto).

Reads are plain deferred transactions under WAL and the verifier pages through the
chain in short transactions, so the run's writes never queue behind it.  Overlap is
shown from the ledger: the run was archiving before the verifier started, was still
running when it ended, and committed events in between.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenios_io.custody.chain import format_time
from tenios_io.ledger import NewRecording, State
from tenios_io.ledger.schema import upgrade
from tenios_io.ledger.tables import custody_events, recordings
from tenios_io.simulator import FaultPlan, Simulator
from tests.acceptance.conftest import ArchiveWorld, _make_world

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = 40
BACKLOG = 40_000  # chain events before the run: the verifier has a long chain to read


@pytest.fixture
def sqlite_world(
    sqlite_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """SQLite ledger, a simulator that answers slowly, no Prefect server (the run's loop
    runs in-process)."""
    upgrade(sqlite_url)
    for world in _make_world(
        prefect_api_url="",
        database_url=sqlite_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=14, recording_seconds=(1.0, 3.0), faults=FaultPlan(latency=0.6)),
    ):
        del world.env["PREFECT_API_URL"]
        monkeypatch.delenv("PREFECT_API_URL")
        yield world


def cli_process(world: ArchiveWorld, *args: str) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TENIOS_", "AWS_", "PREFECT_API_URL"))
    }
    env.update(world.env, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tenios_io.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def archived_count(world: ArchiveWorld) -> int:
    ledger = world.ledger()
    try:
        return ledger.counts().get(State.ARCHIVED, 0)
    finally:
        ledger.engine.dispose()


@pytest.mark.slow
def test_verify_chain_on_sqlite_while_a_run_archives(sqlite_world: ArchiveWorld) -> None:
    world = sqlite_world
    ledger = world.ledger()
    # A long chain that the run leaves alone: registered, due only tomorrow.
    ledger.import_recordings(NewRecording(str(uuid.uuid4())) for _ in range(BACKLOG))
    with ledger.engine.begin() as conn:
        conn.execute(
            recordings.update().values(next_attempt_at=datetime.now(UTC) + timedelta(days=1))
        )
    ledger.engine.dispose()
    uuids = world.sim.seed(RECORDINGS)
    world.register(uuids)

    run = cli_process(world, "run", "nightly", "--concurrency", "1", "--batch-size", "2")
    try:
        deadline = time.monotonic() + 180
        while archived_count(world) == 0:  # the run is archiving: start the audit now
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "the run archived nothing in three minutes"
            time.sleep(0.1)  # polling the ledger, not waiting for a guessed moment
        started = datetime.now(UTC)
        verify = cli_process(world, "audit", "verify-chain")
        verify_out = verify.communicate(timeout=300)[0]
        ended = datetime.now(UTC)
        run_alive_at_end = run.poll() is None
        run_out = run.communicate(timeout=300)[0]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert verify.returncode == 0, verify_out
    assert "custody chain OK" in verify_out
    assert run.returncode == 0, run_out
    for output in (verify_out, run_out):
        assert "database is locked" not in output and "Traceback" not in output
    assert run_alive_at_end, "the run ended before the audit did: no overlap to show"

    ledger = world.ledger()
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    with ledger.engine.connect() as conn:
        written_meanwhile = conn.execute(
            sa.select(sa.func.count()).where(
                custody_events.c.event == "archived",
                custody_events.c.occurred_at > format_time(started),
                custody_events.c.occurred_at < format_time(ended),
            )
        ).scalar_one()
    assert written_meanwhile > 0  # the run committed while the audit was reading
    report = ledger.verify_chain()
    assert report.ok and report.events > BACKLOG + 2 * RECORDINGS
    ledger.engine.dispose()
