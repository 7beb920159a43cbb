"""prefect.yaml for real: `prefect deploy --all` against a Prefect server, then the
nightly deployment run by a process worker (`prefect worker start --run-once`); the
deployments' concurrency limit and job variables as the server reports them, and a
second nightly run refused while one holds the slot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import State as RunState
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Cancelled, Pending

from tenios_io.ledger import State
from tests.acceptance.conftest import ArchiveWorld

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _env(world: ArchiveWorld) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(world.env, PYTHONPATH=str(ROOT))
    return env


def _prefect(world: ArchiveWorld, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [PREFECT, *args],
        env=_env(world),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
def test_deploy_all_then_a_worker_runs_the_nightly_deployment(world: ArchiveWorld) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="tenios-archive", type="process"))
        except ObjectAlreadyExists:
            pass
    _prefect(world, "--no-prompt", "deploy", "--all")
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
    _prefect(world, "worker", "start", "--pool", "tenios-archive", "--run-once", timeout=600)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.is_completed(), state
    ledger = world.ledger()
    assert all(ledger.get(u).state is State.ARCHIVED for u in uuids)
    ledger.engine.dispose()
