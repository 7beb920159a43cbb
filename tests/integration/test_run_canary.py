"""A long run of 404s is run-wide only when the canary says so (issue 25, case 12).

On main more than 50 recordings in a row answering 404 within the grace period stopped
every run with exit 1 — recordings simply not ready yet paged an operator nightly for
up to 48 h.  Now the run asks TENIOS for one recording known to exist there (archived
from the API): found, the 404s mean "not ready yet", those recordings are backed off and
the run ends 0; not found, the run stops without spending the rest's attempts.  The
simulator over HTTP, moto and a real ledger (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tenios_io.api import ApiSource, TeniosClient
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.canary import ApiCanary
from tenios_io.run.loop import RunSummary, archive_until_done
from tenios_io.run.retry import RetryPolicy
from tenios_io.run.session import thread_submitter
from tenios_io.run.stop import RunGuard
from tenios_io.simulator import Simulator, running_simulator
from tenios_io.store import ArchiveStore
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for

STREAK = 3


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test")
    engine.dispose()


@pytest.fixture
def store(make_store: Any, plain_bucket: str) -> ArchiveStore:
    return make_store(plain_bucket, retention_mode="none")  # type: ignore[no-any-return]


def run_loop(
    ledger: Ledger, client: TeniosClient, store: ArchiveStore, guard: RunGuard
) -> RunSummary:
    archiver = Archiver(
        ledger=ledger,
        store=store,
        sources=[ApiSource(client)],
        policy=RetryPolicy(max_attempts=10),
        lease_seconds=60,
        guard=guard,
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            return archive_until_done(
                ledger,
                archiver,
                thread_submitter(pool),
                owner="test-run",
                limit=None,
                concurrency=1,
                batch_size=20,
                lease_seconds=60,
                max_attempts=10,
                time_budget_minutes=None,
                max_wait_seconds=0,
            )
        finally:
            archiver.close()


def add(ledger: Ledger, sim: Simulator, count: int, *, ready: bool) -> list[str]:
    uuids = [sim.add_recording(seconds=1.0, ready=ready) for _ in range(count)]
    ledger.register([NewRecording(u, call_uuid=sim.recording(u).call_uuid) for u in uuids])
    return uuids


def archive_one_from_the_api(ledger: Ledger, sim: Simulator, store: ArchiveStore) -> str:
    """An earlier night: one recording archived from the API (the canary to be)."""
    [canary] = add(ledger, sim, 1, ready=True)
    with running_simulator(sim) as server:
        client, http = client_for(server.url)
        with http:
            assert run_loop(ledger, client, store, RunGuard()).counts["archived"] == 1
    assert ledger.get(canary).source == "api"
    return canary


def test_404s_of_recordings_not_ready_yet_do_not_stop_the_run(
    ledger: Ledger, store: ArchiveStore
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=121)
    canary = archive_one_from_the_api(ledger, sim, store)
    waiting = add(ledger, sim, 2 * STREAK + 1, ready=False)

    with running_simulator(sim) as server:
        client, http = client_for(server.url, max_attempts=1)
        with http:
            asked = len(sim.requests)
            guard = RunGuard(STREAK, canary=ApiCanary(ledger, client))
            summary = run_loop(ledger, client, store, guard)

    assert summary.stopped is None and summary.exit_code == 0
    assert summary.counts[Outcome.RETRY.value] == len(waiting)
    for uuid in waiting:  # backed off, as "not ready yet" within the grace period
        rec = ledger.get(uuid)
        assert rec.state is State.PENDING and rec.next_attempt_at is not None
    canary_asked = [r for r in sim.requests[asked:] if r.recording_uuid == canary]
    assert [r.status for r in canary_asked] == [200, 200]  # once per streak of 3
    assert len(summary.notes) == 2 and canary in summary.notes[0]
    assert "not ready yet" in summary.to_dict()["notes"][0]
    assert not ledger.events_named(["run_stopped"])


def test_the_canary_missing_too_stops_the_run(ledger: Ledger, store: ArchiveStore) -> None:
    """TENIOS_API_URL points at another server: it knows none of them, not even the
    recording archived from TENIOS before."""
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=122)
    canary = archive_one_from_the_api(ledger, sim, store)
    waiting = add(ledger, sim, STREAK + 2, ready=True)
    elsewhere = Simulator(access_key=SIM_ACCESS_KEY, seed=123)  # knows none of them

    with running_simulator(elsewhere) as server:
        client, http = client_for(server.url, max_attempts=1)
        with http:
            guard = RunGuard(STREAK, canary=ApiCanary(ledger, client))
            summary = run_loop(ledger, client, store, guard)

    assert summary.exit_code == 1 and summary.stopped is not None
    assert f"and so did {canary}, archived from TENIOS before" in summary.stopped.cause
    assert "TENIOS_API_URL" in summary.stopped.advice
    assert [r.recording_uuid for r in elsewhere.requests][-1] == canary
    spent = [u for u in waiting if ledger.get(u).attempts]
    # The streak's first ones were backed off as "not ready yet"; the one that tripped
    # it and the rest were released untouched.
    assert len(spent) == STREAK - 1
    assert all(ledger.get(u).state is State.PENDING for u in waiting)
    ledger.integrate_all()
    [event] = ledger.events_named(["run_stopped"])
    assert json.loads(event["details"])["released"] == len(waiting) - STREAK + 1


def test_without_a_canary_the_streak_stops_the_run_and_says_so(
    ledger: Ledger, store: ArchiveStore
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=124)
    add(ledger, sim, STREAK + 1, ready=False)

    with running_simulator(sim) as server:
        client, http = client_for(server.url, max_attempts=1)
        with http:
            guard = RunGuard(STREAK, canary=ApiCanary(ledger, client))
            summary = run_loop(ledger, client, store, guard)

    assert summary.exit_code == 1 and summary.stopped is not None
    assert "no recording archived from the API yet" in summary.stopped.cause
