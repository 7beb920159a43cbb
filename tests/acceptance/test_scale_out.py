"""Scale-out through Prefect (issue 15), for real: a `prefect server start` of its own
(its database on PostgreSQL, as in the runbook), `prefect deploy --all`, a process
work pool, three `prefect worker start` processes serving the `archive-worker` queue
one run at a time, a PostgreSQL ledger, the simulator and moto.  The backfill
deployment with workers=3 archives 3,000 recordings exactly once, every worker run
archives some, and its `backfill-workers` artifact adds up, even though one worker
process (and the flow run it started) is killed mid-run.  Minutes on a shared 2-core
machine: marked slow (CI runs it).

The nightly fan-out (workers=2, 200 recordings) runs against the session's Prefect
test server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy.engine import make_url

from tenios_io.ledger import State
from tests.acceptance.conftest import ArchiveWorld
from tests.acceptance.prefect_processes import (
    archived_by_actor,
    deploy_all,
    flow_run_of,
    kill_tree,
    prefect_server,
    start_worker,
)
from tests.fixtures.databases import _create_database, _drop_database, _pg_admin_url

RECORDINGS = 3000
WORKERS = 3


@pytest.fixture
def served_world(
    slow_pg_world: ArchiveWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ArchiveWorld]:
    """The slowed PostgreSQL world against a `prefect server start` of its own, whose
    database is a fresh PostgreSQL database: this process and its children use it."""
    admin = _pg_admin_url()
    assert admin is not None  # slow_pg_world needs PostgreSQL already
    database = _create_database(admin)
    server_db = make_url(database).set(drivername="postgresql+asyncpg")
    home = tmp_path / "prefect-home"
    home.mkdir()
    try:
        with prefect_server(
            server_db.render_as_string(hide_password=False), home, tmp_path / "server.log"
        ) as url:
            monkeypatch.setenv("PREFECT_API_URL", url)
            slow_pg_world.env["PREFECT_API_URL"] = url
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield slow_pg_world
    finally:
        _drop_database(admin, database)


def workers_artifact(parent_id: Any, key: str = "backfill-workers") -> list[dict[str, Any]]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    (artifact,) = [a for a in found if a.flow_run_id == parent_id]
    data = artifact.data
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else data
    return rows


@pytest.mark.slow
def test_backfill_over_three_worker_processes_survives_one_killed(
    served_world: ArchiveWorld, tmp_path: Path
) -> None:
    world = served_world
    uuids = world.sim.seed(RECORDINGS)
    source = tmp_path / "ids.csv"
    source.write_text(
        "recording_uuid,call_uuid\n"
        + "".join(f"{u},{world.sim.recording(u).call_uuid}\n" for u in uuids)
    )
    deploy_all(world)
    with get_client(sync_client=True) as client:
        backfill = client.read_deployment_by_name("backfill/backfill")
        parent = client.create_flow_run_from_deployment(
            backfill.id,
            parameters={
                "source_file": str(source),
                "workers": WORKERS,
                "concurrency": 4,
                "batch_size": 10,
                "max_wait_seconds": 60.0,
            },
        )
    workers = [
        start_worker(world, "archive-workers", tmp_path / f"worker-{n}.log", "--limit", "1")
        for n in range(WORKERS)
    ]
    runner = start_worker(world, "default", tmp_path / "parent.log", "--run-once")
    ledger = world.ledger()
    try:
        # Each worker process runs one archive-worker flow run, and each of those has
        # archived something: then one worker process and its flow run are killed.
        deadline = time.monotonic() + 600
        runs: dict[int, str] = {}
        while True:
            assert time.monotonic() < deadline, "the three workers never all archived"
            assert runner.poll() is None, (tmp_path / "parent.log").read_text()
            for n, worker in enumerate(workers):
                run_id = runs.get(n) or flow_run_of(worker)
                if run_id:
                    runs[n] = run_id
            done = archived_by_actor(ledger)
            working = {
                n for n, run_id in runs.items() if any(f":{run_id}@" in actor for actor in done)
            }
            if len(working) == WORKERS:
                break
            time.sleep(0.5)  # polling the ledger and the processes, not a guessed moment
        assert len(set(runs.values())) == WORKERS
        victim = runs[0]
        kill_tree(workers[0])
        assert sum(done.values()) < RECORDINGS, "all archived before the kill: too fast"
        assert runner.wait(timeout=1800) == 0, (tmp_path / "parent.log").read_text()
    finally:
        for proc in [runner, *workers]:
            if proc.poll() is None:
                kill_tree(proc)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(parent.id).state
    assert state is not None and state.is_completed(), state
    # Every recording archived, exactly once: one object version per key.
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    versions = world.versions()
    assert len(versions) == RECORDINGS and set(versions.values()) == {1}
    by_actor = archived_by_actor(ledger)
    assert sum(by_actor.values()) == RECORDINGS
    for run_id in runs.values():
        assert any(f":{run_id}@" in actor and n > 0 for actor, n in by_actor.items()), run_id
    # The parent's artifact adds up: the rows of the workers that finished hold what
    # they archived; the killed one is named crashed and left no summary.
    rows = {row["worker"]: row for row in workers_artifact(parent.id)}
    total = rows.pop("total")
    crashed = [name for name, row in rows.items() if "crashed" in row["state"]]
    assert len(crashed) == 1 and total["state"] == "1 crashed"
    counted = sum(int(row["recordings"]) for row in rows.values() if row["recordings"] != "")
    assert total["recordings"] == counted
    killed = sum(n for actor, n in by_actor.items() if f":{victim}@" in actor)
    assert counted + killed == RECORDINGS, (counted, killed, rows)
    ledger.engine.dispose()


@pytest.mark.slow
def test_nightly_with_two_workers_adds_their_summaries_up(
    slow_pg_world: ArchiveWorld, tmp_path: Path
) -> None:
    world = slow_pg_world
    uuids = world.sim.seed(200)
    world.register(uuids)
    deploy_all(world)
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly-archive/nightly-archive")
        parent = client.create_flow_run_from_deployment(
            nightly.id,
            parameters={"workers": 2, "concurrency": 2, "batch_size": 5},
        )
    procs = [
        start_worker(world, "archive-workers", tmp_path / f"worker-{n}.log", "--limit", "1")
        for n in range(2)
    ]
    runner = start_worker(world, "default", tmp_path / "parent.log", "--run-once")
    procs.append(runner)
    try:
        assert runner.wait(timeout=900) == 0, (tmp_path / "parent.log").read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill_tree(proc)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(parent.id).state
    assert state is not None and state.is_completed(), state
    ledger = world.ledger()
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    assert set(world.versions().values()) == {1} and len(world.versions()) == len(uuids)
    # Two worker runs, none crashed; each row is what the ledger says that run archived.
    rows = {row["worker"]: row for row in workers_artifact(parent.id, "nightly-archive-workers")}
    total = rows.pop("total")
    assert len(rows) == 2 and total["state"] == ""
    assert total["recordings"] == sum(row["recordings"] for row in rows.values()) == len(uuids)
    by_actor = archived_by_actor(ledger)
    assert sorted(by_actor.values()) == sorted(
        row["recordings"] for row in rows.values() if row["recordings"]
    )
    assert all(actor.startswith("prefect:archive-worker:") for actor in by_actor)
    # The run's own totals, as a single run's `…-summary` artifact (issue 27).
    summary = {
        row["measure"]: row["value"]
        for row in workers_artifact(parent.id, "nightly-archive-summary")
    }
    assert summary["workers"] == 2 and summary["archived"] == len(uuids)
    assert summary["recordings"] == len(uuids) and "throughput" in summary
    ledger.engine.dispose()
