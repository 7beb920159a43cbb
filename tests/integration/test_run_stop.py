"""A run-wide failure stops the run instead of failing the backlog (issue 11).

On main a revoked key turned every claimed recording into ``failed`` one by one;
S3 access denied / no such bucket did the same.  The archiver runs here for real
against the simulator over HTTP, a moto bucket and a real ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tenios_io.api import ApiSource
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.loop import RunSummary
from tenios_io.run.retry import RetryPolicy
from tenios_io.run.stop import RunGuard, record_stop
from tenios_io.simulator import FaultPlan, Simulator, running_simulator
from tenios_io.store import ArchiveStore
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test")
    engine.dispose()


def _archive_all(
    ledger: Ledger, store: ArchiveStore, sim: Simulator, uuids: list[str], guard: RunGuard
) -> list[Any]:
    ledger.register([NewRecording(u, call_uuid=sim.recording(u).call_uuid) for u in uuids])
    with running_simulator(sim) as server:
        client, http = client_for(server.url, max_attempts=1)
        with http:
            archiver = Archiver(
                ledger=ledger,
                store=store,
                sources=[ApiSource(client)],
                policy=RetryPolicy(max_attempts=5),
                lease_seconds=60,
                guard=guard,
            )
            claims = ledger.claim_batch(len(uuids), lease_seconds=60)
            return archiver.archive_batch(
                sorted(claims, key=lambda c: uuids.index(c.recording_uuid))
            )


def test_a_key_revoked_mid_run_stops_it_and_fails_nothing(
    ledger: Ledger, make_store: Any, plain_bucket: str
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=3, faults=FaultPlan(revoked_after=2))
    uuids = [sim.add_recording(seconds=1.0) for _ in range(5)]
    guard = RunGuard()
    results = _archive_all(
        ledger, make_store(plain_bucket, retention_mode="none"), sim, uuids, guard
    )

    assert [r.outcome for r in results] == [Outcome.ARCHIVED] * 2 + [Outcome.RELEASED] * 3
    for uuid in uuids[2:]:
        rec = ledger.get(uuid)
        assert (rec.state, rec.attempts) == (State.PENDING, 0)
    assert guard.stopped is not None and guard.stopped.exit_code == 2
    assert "TENIOS_ACCESS_KEY" in guard.stopped.message
    assert len(sim.requests) == 3  # the refused request, and nothing after it

    summary = RunSummary(started_at=ledger.now())
    summary.add(results)
    summary.stopped = guard.stopped
    assert summary.exit_code == 2 and summary.to_dict()["stopped"]["cause"]
    record_stop(ledger, guard.stopped, released=3)
    ledger.integrate_all()
    [event] = [e for e in ledger.events_named(["run_stopped"], None, None)]
    assert json.loads(event["details"])["released"] == 3


def test_a_missing_bucket_stops_the_run_before_any_recording_fails(
    ledger: Ledger, make_store: Any
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=4)
    uuids = [sim.add_recording(seconds=1.0) for _ in range(3)]
    guard = RunGuard()
    store = make_store("no-such-bucket-tenios-11", retention_mode="none")
    results = _archive_all(ledger, store, sim, uuids, guard)

    assert {r.outcome for r in results} == {Outcome.RELEASED}
    assert {ledger.get(u).state for u in uuids} == {State.PENDING}
    assert guard.stopped is not None and "TENIOS_S3_BUCKET" in guard.stopped.message
    assert guard.stopped.exit_code == 2


def test_nothing_but_404s_stops_the_run_after_the_streak(
    ledger: Ledger, make_store: Any, plain_bucket: str
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=5)
    uuids = [sim.add_recording(seconds=1.0, ready=False) for _ in range(5)]
    guard = RunGuard(not_found_streak=3)
    results = _archive_all(
        ledger, make_store(plain_bucket, retention_mode="none"), sim, uuids, guard
    )

    assert [r.outcome for r in results] == [Outcome.RETRY] * 2 + [Outcome.RELEASED] * 3
    assert guard.stopped is not None and guard.stopped.exit_code == 1
    assert "404" in guard.stopped.cause and "TENIOS_API_URL" in guard.stopped.advice
