"""Producers hand recordings over with one SQL INSERT (psql / sqlite3, no project code);
the next run archives them — and a run killed mid-drain, re-run, registers each once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from flows.nightly import nightly_archive
from tenios_io.ledger import State
from tenios_io.ledger.tables import recording_intake, recordings
from tests.acceptance.conftest import ArchiveWorld
from tests.acceptance.test_crash import ROOT, RUNNER, _child_env, assert_consistent
from tests.fixtures.producer import insert_values, run_sql, start_sql


def test_raw_sql_inserts_are_archived_by_the_next_run(world: ArchiveWorld) -> None:
    uuids = world.sim.seed(3)
    old = uuids[0]
    rows = [(u, world.sim.recording(u).call_uuid, None, "pbx-7") for u in uuids[1:]]
    done = run_sql(
        world.database_url,
        [
            insert_values(rows),
            insert_values(rows[:1]),  # the producer retried: harmless
            # A backfill of 2021: the key and the retention start at the recording's date
            # (7 years from then is still ahead; one whose retention is over is refused).
            insert_values([(old, None, "2021-05-01T10:00:00Z", "pbx-7")]),
            insert_values([("not-a-uuid", None, None, "pbx-7")]),
        ],
    )
    assert done.returncode == 0, done.stderr

    result = nightly_archive(max_wait_seconds=0)

    assert result["counts"] == {"archived": 3}, result
    ledger = world.ledger()
    for u in uuids:
        rec = ledger.get(u)
        assert rec.state is State.ARCHIVED
        registered = [e for e in ledger.events(u) if e["event"] == "registered"]
        assert len(registered) == 1 and registered[0]["actor"].startswith("prefect:nightly")
        assert json.loads(registered[0]["details"])["producer"] == "pbx-7"
    rec = ledger.get(old)
    assert rec.s3_key is not None and "/2021/05/01/" in rec.s3_key
    assert rec.retain_until is not None and rec.retain_until.year == 2028  # 2021 + 7 years
    new = ledger.get(uuids[1])
    assert new.retain_until is not None and new.retain_until.year >= 2033
    assert ledger.intake_counts() == {"pending": 0, "rejected": 1}
    ledger.engine.dispose()


def _kill_mid_drain(world: ArchiveWorld, point: str, chunk: int) -> None:
    """`run nightly` with the intake drained ``chunk`` rows at a time, SIGKILLed at ``point``."""
    marker = world.tmp / f"reached-{point}"
    child = (
        "import runpy, tenios_io.ledger.intake as intake; "
        f"intake.INTAKE_CHUNK = {chunk}; runpy.run_path({str(RUNNER)!r}, run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, point, str(marker), "--", "run", "nightly"],
        env=_child_env(world),
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while not marker.exists():  # polls the child's progress; not a synchronisation sleep
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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "registered_before_rerun"),
    [("intake_chunk_merged", 0), ("intake_chunk_committed", 10)],
)
def test_sigkill_mid_drain_then_rerun_registers_each_once(
    world: ArchiveWorld, point: str, registered_before_rerun: int
) -> None:
    uuids = world.sim.seed(25)
    rows = [(u, None, None, "pbx-7") for u in uuids]
    done = run_sql(world.database_url, [insert_values(rows), insert_values(rows[:5])])
    assert done.returncode == 0, done.stderr

    _kill_mid_drain(world, point, chunk=10)

    ledger = world.ledger()
    with ledger.engine.connect() as conn:
        registered = conn.execute(sa.select(sa.func.count()).select_from(recordings)).scalar_one()
        left = conn.execute(sa.select(sa.func.count()).select_from(recording_intake)).scalar_one()
    # The killed chunk left no trace; a committed one is registered and gone from the intake.
    assert registered == registered_before_rerun
    assert left == 30 - registered_before_rerun
    ledger.engine.dispose()

    result = nightly_archive(max_wait_seconds=0)

    assert result["counts"] == {"archived": 25}, result
    assert_consistent(world, uuids)
    ledger = world.ledger()
    for u in uuids:
        assert [e["event"] for e in ledger.events(u)].count("registered") == 1
    assert ledger.intake_counts() == {"pending": 0, "rejected": 0}
    ledger.engine.dispose()


@pytest.mark.slow
def test_ten_thousand_rows_inserted_while_a_run_archives_are_registered_once(
    world: ArchiveWorld,
) -> None:
    archivable = world.sim.seed(5)
    world.register(archivable)
    keys = [str(uuid.uuid4()) for _ in range(10_000)]
    statements = [
        insert_values([(k, None, None, "load") for k in keys[i : i + 100]])
        for i in range(0, len(keys), 100)
    ]
    producer = start_sql(world.database_url, statements, world.tmp / "producer.sql")

    # The run drains before each claim round while the producer inserts; its limit keeps
    # it to the five archivable recordings (due first), not 10,000 not-ready 404s.
    result = nightly_archive(limit=5, max_wait_seconds=0)

    assert producer.wait(timeout=300) == 0, producer.stderr.read() if producer.stderr else ""
    assert result["counts"] == {"archived": 5}, result
    ledger = world.ledger()
    ledger.drain_intake()  # the next run's drain: whatever arrived after the last round
    assert ledger.intake_counts() == {"pending": 0, "rejected": 0}
    registered: dict[str, int] = {}
    for event in ledger.events_named(["registered"]):
        key = str(event["recording_uuid"])
        registered[key] = registered.get(key, 0) + 1
    assert registered == dict.fromkeys([*archivable, *keys], 1)
    assert all(ledger.get(u).state is State.ARCHIVED for u in archivable)
    assert ledger.verify_chain().ok
    ledger.engine.dispose()
