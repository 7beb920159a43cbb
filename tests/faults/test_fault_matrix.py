"""The fault matrix (issue 11): the real archiver against the simulator over HTTP, a
moto bucket and a real ledger, through each API and S3 fault; one table, and per
fault: nothing wrong is archived, nothing is lost, a run-wide error fails nothing.

Run with ``-s`` to see the table at the end (it is also in the README's reliability
section).
The SFTP drop's faults and a database restart are in test_run_faults.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tenios_io.api import ApiSource
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.run.archiver import Archiver
from tenios_io.run.loop import RunSummary
from tenios_io.run.retry import RetryPolicy
from tenios_io.run.stop import RunGuard
from tenios_io.simulator import FaultPlan, Simulator, running_simulator
from tests.fixtures.fault_table import FaultTable
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for

COUNT = 3


@dataclass(frozen=True)
class Case:
    fault: str
    plan: FaultPlan
    archived: int
    """Objects that must be written (every one the whole recording)."""
    exit_code: int
    bucket: str | None = None


CASES = [
    Case("500", FaultPlan(schedule=("500",)), 3, 0),
    Case("503 + Retry-After", FaultPlan(schedule=("503",)), 3, 0),
    Case("429 + Retry-After", FaultPlan(schedule=("429",)), 3, 0),
    Case("connection reset", FaultPlan(schedule=("reset",)), 3, 0),
    Case("truncated (Content-Length)", FaultPlan(schedule=("truncate",)), 3, 0),
    Case("cut, close-delimited", FaultPlan(schedule=("cut",)), 2, 0),
    Case("whole, close-delimited", FaultPlan(schedule=("close",)), 3, 0),
    Case("JSON on 200", FaultPlan(schedule=("json200",)), 2, 0),
    Case("HTML on 200", FaultPlan(schedule=("html200",)), 2, 0),
    Case("WAV header promises more", FaultPlan(schedule=("shortwav",)), 2, 0),
    Case("redirect (308)", FaultPlan(redirect=1.0), 0, 2),
    Case("key revoked mid-run", FaultPlan(revoked_after=1), 1, 2),
    Case("no such bucket", FaultPlan(), 0, 2, bucket="no-such-bucket-fault-matrix"),
]


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[Ledger]:
    from tenios_io.ledger.schema import upgrade

    upgrade(sqlite_url)
    engine = create_ledger_engine(sqlite_url)
    yield Ledger(engine, actor="fault-matrix")
    engine.dispose()


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
def test_fault(
    case: Case,
    ledger: Ledger,
    make_store: Any,
    plain_bucket: str,
    s3_client: Any,
    fault_table: FaultTable,
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=11, faults=case.plan)
    uuids = [sim.add_recording(seconds=1.0, channels=2) for _ in range(COUNT)]
    ledger.register([NewRecording(u, call_uuid=sim.recording(u).call_uuid) for u in uuids])
    store = make_store(case.bucket or plain_bucket, retention_mode="none")
    guard = RunGuard()
    with running_simulator(sim) as server:
        client, http = client_for(server.url, max_attempts=3)
        with http:
            archiver = Archiver(
                ledger=ledger,
                store=store,
                sources=[ApiSource(client)],
                policy=RetryPolicy(max_attempts=5),
                lease_seconds=60,
                guard=guard,
            )
            claims = ledger.claim_batch(COUNT, lease_seconds=60)
            claims.sort(key=lambda c: uuids.index(c.recording_uuid))
            summary = RunSummary(started_at=ledger.now())
            summary.add(archiver.archive_batch(claims))
            summary.stopped = guard.stopped

    states = Counter(ledger.get(u).state.value for u in uuids)
    objects = 0
    for uuid in uuids:
        rec = ledger.get(uuid)
        if rec.state is State.ARCHIVED:
            objects += 1
            # nothing wrong is archived: the object is the whole recording
            assert rec.sha256 == sim.expected_sha256(uuid)
            head = s3_client.head_object(Bucket=plain_bucket, Key=rec.s3_key)
            assert head["ContentLength"] == sim.expected_size(uuid)
        else:
            # nothing is lost, nothing failed: it will be archived by a later run
            assert rec.state is State.PENDING, (uuid, rec.state, rec.last_error)
    assert objects == case.archived
    assert summary.exit_code == case.exit_code
    if case.exit_code == 2:
        assert guard.stopped is not None and guard.stopped.advice  # the run says what to do
        assert all(
            ledger.get(u).attempts == 0 for u in uuids if ledger.get(u).state is State.PENDING
        )
    if guard.stopped:
        outcome = f"run stopped: {guard.stopped.cause}"
    elif objects < COUNT:
        outcome = "body refused before upload, retried later"
    else:
        outcome = "archived (retried inside the client where needed)"
    ledger_states = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    row = f"| {case.fault} | {outcome} | {objects} | {ledger_states} | {summary.exit_code} |"
    fault_table(CASES.index(case), case.fault, row)


def test_the_table_has_a_row_per_case() -> None:
    """Each case writes its own row of the table (the session prints it with ``-s``):
    no two cases share a fault's name."""
    assert len({case.fault for case in CASES}) == len(CASES)
