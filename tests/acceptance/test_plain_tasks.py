"""Tasks take plain data (issue 15): an `archive-batch` task given only a clients key
and claims, in a process where no flow lent its pipeline, builds the clients itself
(once per process and key) and archives the batch."""

from __future__ import annotations

import pickle
import uuid

from flows.archiving import archive_batch, pipeline_of
from tenios_io.ledger import State
from tenios_io.run.archiver import Outcome
from tenios_io.run.clients import RunClients
from tests.acceptance.conftest import ArchiveWorld


def test_an_archive_batch_task_needs_only_plain_data(world: ArchiveWorld) -> None:
    uuids = world.sim.seed(3)
    world.register(uuids)
    # The key names its run (a flow run's actor is unique): this process's clients of
    # another test (another environment) are not taken for these.
    actor = f"test:plain-task:{uuid.uuid4()}"
    run = RunClients(config_file=None, actor=actor, concurrency=2)
    ledger = world.ledger()
    claims = ledger.claim_batch(3, lease_seconds=60, owner=run.actor)
    # What crosses to a task runner survives a trip through pickle unchanged.
    run_again, claims_again = pickle.loads(pickle.dumps((run, claims)))
    assert run_again == run and claims_again == claims
    results = archive_batch.fn(run_again, claims_again, None)
    assert sorted(r.recording_uuid for r in results) == sorted(uuids)
    assert {r.outcome for r in results} == {Outcome.ARCHIVED}
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    # Built once per process and key: the next task finds the same clients.
    assert pipeline_of(run) is pipeline_of(RunClients(None, actor, 2))
    assert pipeline_of(run) is not pipeline_of(RunClients(None, "test:other", 2))
    ledger.engine.dispose()
