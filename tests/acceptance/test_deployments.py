"""prefect.yaml for real: `prefect deploy --all` against a Prefect server, then the
nightly deployment run by a process worker (`prefect worker start --run-once`); the
deployments' concurrency limit and job variables as the server reports them, and a
second nightly run refused while one holds the slot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State as RunState
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Pending

from tenios_io.ledger import State
from tests.acceptance.conftest import ArchiveWorld
from tests.acceptance.prefect_processes import (
    archived_by_actor,
    deploy_all,
    kill_tree,
    prefect,
    start_worker,
)


@pytest.mark.slow
def test_deploy_all_then_a_worker_runs_the_nightly_deployment(world: ArchiveWorld) -> None:
    deploy_all(world)
    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        assert {"nightly-archive", "backfill", "archive-worker", "audit"} <= set(deployments)
        nightly = deployments["nightly-archive"]
        assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [  # type: ignore[union-attr]
            ("0 2 * * *", "Europe/Berlin")
        ]
        assert deployments["backfill"].schedules == []
        # Deployment hygiene (issue 15) as the server reports it: nightly never overlaps
        # itself, the bulk deployment logs at WARNING.
        assert nightly.global_concurrency_limit is not None
        assert nightly.global_concurrency_limit.limit == 1
        assert nightly.concurrency_options is not None
        assert nightly.concurrency_options.collision_strategy == "CANCEL_NEW"
        assert deployments["backfill"].job_variables == {
            "env": {"PREFECT_LOGGING_LEVEL": "WARNING"}
        }
        assert deployments["backfill"].global_concurrency_limit is None
        worker = deployments["archive-worker"]
        assert worker.job_variables == {"env": {"PREFECT_LOGGING_LEVEL": "WARNING"}}
        assert worker.work_queue_name == "archive-workers" and worker.schedules == []
        # A second nightly run while one holds the slot: the server cancels the new one
        # (the same orchestration rule a worker's submission goes through).
        first = client.create_flow_run_from_deployment(nightly.id)
        second = client.create_flow_run_from_deployment(nightly.id)
        taken: RunState[Any] | None = client.set_flow_run_state(first.id, Pending()).state
        assert taken is not None and taken.type == StateType.PENDING, taken
        refused: RunState[Any] | None = client.set_flow_run_state(second.id, Pending()).state
        assert refused is not None and refused.type == StateType.CANCELLED, refused
        assert "concurrency limit" in (refused.message or "")
        # The first one ends: the slot is free again (the real run below needs it).
        client.set_flow_run_state(first.id, Cancelled())
        uuids = world.sim.seed(3)
        world.register(uuids)
        run = client.create_flow_run_from_deployment(nightly.id)
    prefect(world, "worker", "start", "--pool", "tenios-archive", "--run-once", timeout=600)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.is_completed(), state
    ledger = world.ledger()
    assert all(ledger.get(u).state is State.ARCHIVED for u in uuids)
    ledger.engine.dispose()


@pytest.mark.slow
def test_a_second_nightly_run_is_cancelled_while_one_is_running(
    slow_pg_world: ArchiveWorld, tmp_path: Path
) -> None:
    """Not only the configuration: nightly deployed from prefect.yaml, one run really
    running on a process worker, a second one created meanwhile is taken by the same
    worker and ends Cancelled (CANCEL_NEW); the first completes and archives everything.

    The simulator holds its answers while the second run is decided, so the first is
    still running however long the worker takes to pick the second up (a timing margin
    alone once let the first finish first under load, and the second then ran)."""
    world = slow_pg_world
    uuids = world.sim.seed(120)
    world.register(uuids)
    deploy_all(world)
    params = {"concurrency": 2, "batch_size": 5}
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly-archive/nightly-archive")
        first = client.create_flow_run_from_deployment(nightly.id, parameters=params)
    worker = start_worker(world, "default", tmp_path / "worker.log")
    ledger = world.ledger()
    try:
        deadline = time.monotonic() + 600
        with get_client(sync_client=True) as client:
            # The first run is running and has archived something (it holds the slot).
            while True:
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                state = client.read_flow_run(first.id).state
                assert state is not None and not state.is_final(), state
                if state.is_running() and ledger.counts().get(State.ARCHIVED, 0) > 0:
                    break
                time.sleep(0.5)  # polling the server and the ledger
            with world.sim.held():
                second = client.create_flow_run_from_deployment(nightly.id, parameters=params)
                while True:
                    assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                    refused = client.read_flow_run(second.id).state
                    if refused is not None and refused.is_final():
                        break
                    time.sleep(0.5)
                assert refused.type == StateType.CANCELLED, refused
                assert "concurrency limit" in (refused.message or ""), refused
                running = client.read_flow_run(first.id).state
                assert running is not None and running.is_running(), running
            while True:
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                ended = client.read_flow_run(first.id).state
                if ended is not None and ended.is_final():
                    break
                time.sleep(0.5)
            assert ended.is_completed(), ended
            # The second never ran: it never was Running, nothing archived under its name.
            history = [s.type for s in client.read_flow_run_states(second.id)]
            assert StateType.RUNNING not in history, history
    finally:
        kill_tree(worker)
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    assert set(world.versions().values()) == {1} and len(world.versions()) == len(uuids)
    by_actor = archived_by_actor(ledger)
    assert sum(by_actor.values()) == len(uuids)
    assert all(f":{first.id}@" in actor for actor in by_actor), by_actor
    ledger.engine.dispose()
