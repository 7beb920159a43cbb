"""A recording whose fetch kills the worker ends `failed` after TENIOS_MAX_ATTEMPTS runs.

Real `tenios-archive run nightly` processes (simulator over HTTP, moto server, both
ledger backends): the fetch of one recording SIGKILLs the process every time.  Each
run rescues it once its lease has expired (by the ledger's clock: the database's on
PostgreSQL), until the attempt cap ends it `failed` at claim time; the other
recordings are archived, and `ledger requeue` makes it claimable again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenios_io.ledger import Ledger, State
from tenios_io.ledger.tables import recordings
from tenios_io.simulator import Simulator
from tests.acceptance.conftest import ArchiveWorld, _make_world
from tests.fixtures.cli import CliResult

ROOT = Path(__file__).resolve().parents[2]
KILLER = Path(__file__).with_name("fetch_killer.py")
MAX_ATTEMPTS = 2


@pytest.fixture
def plain_world(
    database_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """The pipeline's peers without a Prefect server: `run nightly` runs its loop
    in-process (seconds of start-up per run)."""
    for world in _make_world(
        prefect_api_url="",
        database_url=database_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=13, recording_seconds=(2.0, 5.0)),
    ):
        del world.env["PREFECT_API_URL"]
        monkeypatch.delenv("PREFECT_API_URL")
        world.env["TENIOS_MAX_ATTEMPTS"] = str(MAX_ATTEMPTS)
        yield world


def run_nightly(world: ArchiveWorld, *, killer: str) -> subprocess.CompletedProcess[str]:
    """`tenios-archive run nightly`, one recording at a time; fetching ``killer`` kills it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TENIOS_", "AWS_", "PREFECT_API_URL"))
    }
    env.update(world.env, PYTHONPATH=str(ROOT))
    command = ["run", "nightly", "--concurrency", "1", "--batch-size", "1"]
    return subprocess.run(
        [sys.executable, str(KILLER), killer, "--", *command],
        env=env,
        cwd=ROOT,
        start_new_session=True,  # the killer takes down its own process group only
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_until_lease_expired(ledger: Ledger, recording_uuid: str) -> None:
    """Poll until the ledger's lease clock is past the dead worker's lease."""
    postgres = ledger.engine.dialect.name == "postgresql"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with ledger.engine.connect() as conn:
            expires, db_now = conn.execute(
                sa.select(
                    recordings.c.lease_expires_at,
                    sa.func.clock_timestamp() if postgres else sa.null(),
                ).where(recordings.c.recording_uuid == recording_uuid)
            ).one()
        assert expires is not None, "the killed run holds no lease on the recording"
        now = db_now if postgres else datetime.now(UTC)
        if now > expires.replace(tzinfo=expires.tzinfo or UTC):
            return
        time.sleep(0.2)  # polling the clock, not waiting for a guessed moment
    pytest.fail("the dead worker's lease did not expire within a minute")


@pytest.mark.slow
def test_a_recording_whose_fetch_kills_the_worker_ends_failed_at_the_cap(
    plain_world: ArchiveWorld, cli: Callable[..., CliResult]
) -> None:
    world = plain_world
    uuids = world.sim.seed(5)
    killer = uuids[2]
    world.register(uuids)
    ledger = world.ledger()

    for run in range(1, MAX_ATTEMPTS + 1):
        died = run_nightly(world, killer=killer)
        assert died.returncode == -signal.SIGKILL, died.stdout + died.stderr
        rec = ledger.get(killer)
        assert rec.state is State.IN_PROGRESS and rec.attempts == run
        wait_until_lease_expired(ledger, killer)

    last = run_nightly(world, killer=killer)  # the cap ends it at claim time: no fetch
    assert last.returncode in (0, 1), last.stdout + last.stderr
    rec = ledger.get(killer)
    assert rec.state is State.FAILED and rec.lease_token is None
    assert rec.last_error is not None
    assert rec.last_error.startswith(f"worker died {MAX_ATTEMPTS} times while archiving it")
    others = [u for u in uuids if u != killer]
    assert {u: ledger.get(u).state for u in others} == {u: State.ARCHIVED for u in others}
    events = [e["event"] for e in ledger.events(killer)]
    assert events.count("claimed") == MAX_ATTEMPTS and events.count("failed") == 1
    assert "fetched" not in events
    assert ledger.verify_chain().ok

    requeued = cli("ledger", "requeue", killer)
    assert requeued.exit_code == 0, requeued.output
    again = ledger.get(killer)
    assert again.state is State.PENDING and again.attempts == 0
    assert [c.recording_uuid for c in ledger.claim_batch(5, lease_seconds=60)] == [killer]
    ledger.engine.dispose()
