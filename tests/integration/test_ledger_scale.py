"""The ledger at backfill scale: claims that do not serialise, the attempt cap at claim
time, one clock for leases, readers that never block writers, streamed imports."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenios_io.exceptions import ImportFileError
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.importing import iter_import_file
from tenios_io.ledger.schema import upgrade
from tenios_io.ledger.tables import recordings


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _in_thread(fn, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked: the call waited on another transaction"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out.get("value")


@pytest.mark.postgres
def test_a_claim_proceeds_while_another_claim_is_uncommitted(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine_a, engine_b = create_ledger_engine(postgres_url), create_ledger_engine(postgres_url)
    a, b = Ledger(engine_a, actor="a"), Ledger(engine_b, actor="b")
    a.register([NewRecording(i) for i in ids(200)])
    # Worker A is in the middle of a claim (rows locked, nothing committed) and another
    # transaction holds a row lock on one more row; B must claim other rows at once.
    with a._write() as held:
        mine = a._claim_postgres(held, 50, 60, "a", 10, a.now())[1]
        held.execute(
            sa.select(recordings.c.recording_uuid)
            .where(recordings.c.state == State.PENDING.value)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        theirs = _in_thread(lambda: b.claim_batch(50, lease_seconds=60, integrate=False))
    assert len(mine) == 50 and len(theirs) == 50  # type: ignore[arg-type]
    assert not {r["recording_uuid"] for r, _ in mine} & {c.recording_uuid for c in theirs}  # type: ignore[union-attr]
    engine_a.dispose()
    engine_b.dispose()


@pytest.mark.postgres
def test_lease_expiry_is_decided_by_the_database_clock(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = create_ledger_engine(postgres_url)
    ahead = Ledger(engine, actor="fast", clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    honest = Ledger(engine, actor="honest")
    honest.register([NewRecording(i) for i in ids(1)])
    (claim,) = honest.claim_batch(1, lease_seconds=600)
    # A worker whose clock runs two hours ahead does not see the live lease as expired.
    assert ahead.claim_batch(5, lease_seconds=600) == []
    held = honest.get(claim.recording_uuid)
    assert held.lease_expires_at is not None
    assert held.lease_expires_at - datetime.now(UTC) > timedelta(minutes=9)
    engine.dispose()


def test_a_recording_that_kills_its_worker_ends_failed_at_the_cap(database_url: str) -> None:
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    engine = create_ledger_engine(database_url)
    ledger = Ledger(engine, actor="w", clock=lambda: now[0], lease_clock="worker")
    (key,) = ids(1)
    ledger.register([NewRecording(key)])
    for attempt in (1, 2, 3):
        (claim,) = ledger.claim_batch(1, lease_seconds=30, max_attempts=3)
        assert claim.recording.attempts == attempt
        now[0] += timedelta(seconds=31)  # the worker died: its lease runs out
    assert ledger.claim_batch(1, lease_seconds=30, max_attempts=3) == []
    rec = ledger.get(key)
    assert rec.state is State.FAILED and rec.lease_token is None
    assert rec.last_error == "worker died 3 times while archiving it"
    failed = [e for e in ledger.events(key) if e["event"] == "failed"]
    assert len(failed) == 1 and "worker died 3 times" in failed[0]["details"]
    assert ledger.requeue([key]) == [key]
    again = ledger.get(key)
    assert again.state is State.PENDING and again.attempts == 0 and again.lease_expiries == 0
    assert ledger.verify_chain().ok
    engine.dispose()


def test_sqlite_a_long_read_does_not_block_a_writer(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = create_ledger_engine(sqlite_url)
    ledger = Ledger(engine)
    ledger.register([NewRecording(i) for i in ids(20)])
    with engine.connect() as reader:
        reader.execute(sa.select(sa.func.count()).select_from(recordings)).scalar_one()
        assert reader.in_transaction()  # a read snapshot is open
        claims = _in_thread(lambda: ledger.claim_batch(5, lease_seconds=60), timeout=10)
    assert len(claims) == 5  # type: ignore[arg-type]
    engine.dispose()


def _write_ids(path: Path, keys: list[str], bad_at: int | None = None) -> None:
    with path.open("w") as out:
        for n, key in enumerate(keys, start=1):
            out.write(("not-a-uuid" if n == bad_at else key) + "\n")


def test_streamed_import_with_a_bad_line_near_the_end_imports_nothing(
    database_url: str, tmp_path: Path
) -> None:
    engine = create_ledger_engine(database_url)
    ledger = Ledger(engine)
    keys = ids(30_000)
    path = tmp_path / "ids.txt"
    _write_ids(path, keys, bad_at=29_990)
    with pytest.raises(ImportFileError, match="line 29990"):
        ledger.import_recordings(iter_import_file(path))
    assert sum(ledger.counts().values()) == 0 and ledger.queued_events() == 0
    _write_ids(path, keys + keys[:10])
    result = ledger.import_recordings(iter_import_file(path))
    assert (result.read, result.added, result.known, result.duplicates) == (30_010, 30_000, 0, 10)
    again = ledger.import_recordings(iter_import_file(path))
    assert (again.added, again.known, again.duplicates) == (0, 30_000, 10)
    report = ledger.verify_chain()
    assert report.ok and report.events == 30_000 and report.queued == 0
    engine.dispose()
