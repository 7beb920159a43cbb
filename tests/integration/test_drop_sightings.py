"""The sweep's sightings of drop files, in the ledger (a real SQLite file and PostgreSQL):
"unchanged for N seconds" is measured by one clock, the database's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.sightings import Sighting
from tenios_io.ledger.tables import drop_sightings


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(database_url: str, clock: Clock) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test", clock=clock, lease_clock="worker")  # time by hand
    engine.dispose()


def test_a_file_is_unchanged_since_its_first_sighting_at_this_size_and_mtime(
    ledger: Ledger, clock: Clock
) -> None:
    a, b = "/drop/a.wav", "/drop/b.wav"
    assert ledger.sight_drop_files({a: (10, 100.0), b: (5, 50.0)}) == {
        a: Sighting(0.0, False),
        b: Sighting(0.0, False),
    }
    clock.now += timedelta(seconds=45)
    ledger.mark_drop_files_complete([a])
    assert ledger.sight_drop_files({a: (10, 100.0), b: (6, 51.0)}) == {
        a: Sighting(45.0, True),
        b: Sighting(0.0, False),  # b grew: it starts again
    }
    clock.now += timedelta(seconds=30)
    seen = ledger.sight_drop_files({a: (10, 100.0), b: (6, 51.0)})
    assert seen == {a: Sighting(75.0, True), b: Sighting(30.0, False)}
    # a changed (rewritten at the same size): no longer known complete, starts again
    assert ledger.sight_drop_files({a: (10, 101.0)})[a] == Sighting(0.0, False)
    # b was not listed that time: forgotten, so a new sighting starts from zero
    clock.now += timedelta(seconds=30)
    assert ledger.sight_drop_files({a: (10, 101.0), b: (6, 51.0)}) == {
        a: Sighting(30.0, False),
        b: Sighting(0.0, False),
    }


@pytest.mark.postgres
def test_on_postgresql_the_database_clock_decides_not_this_hosts(postgres_url: str) -> None:
    from tenios_io.ledger.schema import upgrade

    upgrade(postgres_url)
    engine = create_ledger_engine(postgres_url)
    try:
        # This host's clock is a year ahead: it plays no part in "unchanged for".
        skewed = Ledger(engine, actor="test", clock=lambda: datetime.now(UTC) + timedelta(days=365))
        path = "/drop/c.wav"
        assert skewed.sight_drop_files({path: (10, 1.0)})[path].unchanged_seconds == 0.0
        again = skewed.sight_drop_files({path: (10, 1.0)})[path].unchanged_seconds
        assert 0.0 < again < 60.0
    finally:
        engine.dispose()


def test_two_sweeps_at_once_take_turns(database_url: str) -> None:
    """Two runs sweeping the same new files at the same moment: both succeed, one row
    per file (on PostgreSQL an advisory lock, on SQLite BEGIN IMMEDIATE)."""
    import threading

    files = {f"/drop/{n}.wav": (n, float(n)) for n in range(200)}
    engines = [create_ledger_engine(database_url) for _ in range(2)]
    ledgers = [Ledger(engine, actor=f"run{n}") for n, engine in enumerate(engines)]
    start = threading.Barrier(2)
    results: list[object] = []

    def sweep(ledger: Ledger) -> None:
        start.wait()
        try:
            results.append(ledger.sight_drop_files(files))
        except Exception as exc:  # the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=sweep, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert all(isinstance(r, dict) and set(r) == set(files) for r in results), results
        with engines[0].connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(drop_sightings))
            assert rows.scalar_one() == len(files)
    finally:
        for engine in engines:
            engine.dispose()
