"""Crash safety: SIGKILL a real run's process group at the worst moments, then re-run.

Afterwards: exactly one object per recording (no sidecar), all archived, no multipart
upload left behind, and the custody chain verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.nightly import nightly_archive
from tenios_io.ledger import State
from tenios_io.store import sidecar_key
from tests.acceptance.conftest import ArchiveWorld

RUNNER = Path(__file__).with_name("crash_runner.py")
ROOT = Path(__file__).resolve().parents[2]


def _child_env(world: ArchiveWorld) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(world.env)
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_and_kill(world: ArchiveWorld, point: str, *args: str) -> None:
    """Start `run nightly` in its own process group, SIGKILL the group at ``point``."""
    marker = world.tmp / f"reached-{point}"
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), point, str(marker), "--", "run", "nightly", *args],
        env=_child_env(world),
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while not marker.exists():  # wait for the child to reach the point (or to die)
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"the run ended (rc={proc.returncode}) before {point}:\n{out}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the run did not reach {point} in time")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    if proc.stdout:
        proc.stdout.close()


def assert_consistent(world: ArchiveWorld, uuids: list[str]) -> None:
    ledger = world.ledger()
    versions = world.versions()
    for u in uuids:
        rec = ledger.get(u)
        assert rec.state is State.ARCHIVED, (u, rec.state, rec.last_error)
        assert rec.sha256 == world.sim.expected_sha256(u)
        assert rec.s3_key and versions.get(rec.s3_key) == 1, (rec.s3_key, versions)
        assert sidecar_key(rec.s3_key) not in versions
    recording_keys = [k for k in versions if k.endswith(".wav")]
    assert len(recording_keys) == len(uuids)
    uploads = world.s3.list_multipart_uploads(Bucket=world.bucket).get("Uploads", [])  # type: ignore[attr-defined]
    assert uploads == []
    assert ledger.verify_chain().ok
    ledger.engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_fetch", "after_upload"])
def test_sigkill_between_steps_then_rerun(world: ArchiveWorld, point: str) -> None:
    uuids = world.sim.seed(4)
    world.register(uuids)
    run_and_kill(world, point, "--concurrency", "1", "--batch-size", "10")
    ledger = world.ledger()
    assert ledger.counts()[State.IN_PROGRESS] >= 1  # the dead run's claims
    ledger.engine.dispose()
    result = nightly_archive(max_wait_seconds=60)  # waits for the dead leases to expire
    assert result["exit_code"] == 0
    assert_consistent(world, uuids)
    ledger = world.ledger()
    events = [e["event"] for u in uuids for e in ledger.events(u)]
    if point == "after_upload":
        assert "found_archived" in events  # the object was there; nothing was re-uploaded
    assert any("rescued_from" in e["details"] for u in uuids for e in ledger.events(u))
    ledger.engine.dispose()


@pytest.mark.slow
def test_sigkill_after_the_ledger_write_then_rerun(world: ArchiveWorld) -> None:
    # Outcomes are written for several recordings in one transaction; a kill right after
    # it leaves those recordings archived, and the re-run has nothing left to do for them.
    uuids = world.sim.seed(4)
    world.register(uuids)
    run_and_kill(world, "after_record", "--concurrency", "1", "--batch-size", "10")
    ledger = world.ledger()
    written = [u for u in uuids if ledger.get(u).state is State.ARCHIVED]
    assert written  # the killed run's write committed
    ledger.engine.dispose()
    result = nightly_archive(max_wait_seconds=60)
    assert result["exit_code"] == 0
    assert_consistent(world, uuids)
    ledger = world.ledger()
    for u in written:  # archived once, never fetched again
        assert [e["event"] for e in ledger.events(u)].count("fetched") == 1
    ledger.engine.dispose()


@pytest.mark.slow
def test_sigkill_mid_multipart_then_rerun(world: ArchiveWorld) -> None:
    big = world.sim.add_recording(seconds=1400)  # ~22 MB: multipart above 5 MiB, 2 parts
    world.register([big])
    run_and_kill(world, "multipart_part_uploaded")
    orphans = world.s3.list_multipart_uploads(Bucket=world.bucket).get("Uploads", [])  # type: ignore[attr-defined]
    assert len(orphans) == 1  # what the killed process left behind
    result = nightly_archive(max_wait_seconds=60)
    assert result["counts"] == {"archived": 1}
    assert_consistent(world, [big])


@pytest.mark.slow
def test_two_concurrent_runs_on_postgresql_never_process_a_recording_twice(
    pg_world: ArchiveWorld,
) -> None:
    uuids = pg_world.sim.seed(30)
    pg_world.register(uuids)
    ledger = pg_world.ledger()
    # The gate: this test holds the recordings table in EXCLUSIVE mode (reads go on,
    # writes wait), so both runs preflight and then queue behind it at their first
    # claim; once PostgreSQL shows both waiting, the gate opens and they really race
    # for the claims, however slowly each one started (a fixed head start did not
    # hold on a loaded machine: one run could do all the work).
    with ledger.engine.connect() as gate:
        opened = gate.begin()
        gate.execute(sa.text("LOCK TABLE recordings IN EXCLUSIVE MODE"))
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tenios_io.cli",
                    "run",
                    "nightly",
                    "--concurrency",
                    "2",
                    "--batch-size",
                    "3",
                ],
                env=_child_env(pg_world),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 240
        while _waiting_for_a_lock(ledger.engine) < 2:
            assert all(p.poll() is None for p in procs), "a run ended before the gate opened"
            assert time.monotonic() < deadline, "the runs never reached their first claim"
            time.sleep(0.1)  # polling PostgreSQL's view of the runs, not a head start
        opened.commit()
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    ledger = pg_world.ledger()
    fetched: dict[str, int] = {}
    owners: set[str] = set()
    for u in uuids:
        for e in ledger.events(u):
            if e["event"] == "fetched":
                fetched[u] = fetched.get(u, 0) + 1
            if e["event"] == "claimed":
                owners.add(e["actor"])
    assert fetched == {u: 1 for u in uuids}
    assert len(owners) == 2, owners  # both runs did work
    ledger.engine.dispose()
    assert_consistent(pg_world, uuids)


def _waiting_for_a_lock(engine: sa.engine.Engine) -> int:
    """How many other sessions of this database wait for a lock (PostgreSQL's view)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )
