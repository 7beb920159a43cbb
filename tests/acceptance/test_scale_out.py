"""Scale-out through Prefect (issue 15), for real: `prefect deploy --all` against a
Prefect server, a process work pool, three `prefect worker start` processes serving
the `archive-worker` queue one run at a time, a PostgreSQL ledger, the simulator and
moto.  The backfill deployment with workers=3 archives every recording exactly once,
every worker run archives some, and its `backfill-workers` artifact adds up, even
though one worker process (and the flow run it started) is killed mid-run.

600 recordings, not the issue's 3,000: on this shared 2-core machine three worker
processes, their flow-run processes, the Prefect server, PostgreSQL and moto take
minutes for 600 already; the simulator's latency fault keeps each recording slow
enough that all three workers get work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.exceptions import ObjectAlreadyExists

from tenios_io.ledger import Ledger, State
from tenios_io.ledger.tables import custody_events, custody_queue
from tenios_io.simulator import Simulator
from tenios_io.simulator.faults import FaultPlan
from tests.acceptance.conftest import ArchiveWorld, _make_world

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
RECORDINGS = 600
WORKERS = 3


@pytest.fixture
def slow_pg_world(
    prefect_api_url: str,
    postgres_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """A PostgreSQL ledger and short recordings whose every API answer is delayed
    up to 0.3 s (the simulator's latency fault)."""
    from tenios_io.ledger.schema import upgrade

    upgrade(postgres_url)
    yield from _make_world(
        prefect_api_url=prefect_api_url,
        database_url=postgres_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=15, recording_seconds=(0.5, 1.5), faults=FaultPlan(latency=0.3)),
    )


def _env(world: ArchiveWorld) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(world.env, PYTHONPATH=str(ROOT), PREFECT_WORKER_QUERY_SECONDS="1")
    return env


def _prefect(world: ArchiveWorld, *args: str) -> None:
    done = subprocess.run(
        [PREFECT, *args],
        env=_env(world),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _start(world: ArchiveWorld, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [PREFECT, *args],
            env=_env(world),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def archived_by_actor(ledger: Ledger) -> Counter[str]:
    """`archived` custody events per actor, queued or integrated."""
    out: Counter[str] = Counter()
    with ledger.engine.connect() as conn:
        for table in (custody_queue, custody_events):
            rows = conn.execute(
                sa.select(table.c.actor, sa.func.count())
                .where(table.c.event == "archived")
                .group_by(table.c.actor)
            )
            for actor, n in rows:
                out[actor] += n
    return out


def flow_run_of(worker: subprocess.Popen[bytes]) -> str | None:
    """The flow run a worker process is running (its child's PREFECT__FLOW_RUN_ID)."""
    for child in psutil.Process(worker.pid).children(recursive=True):
        try:
            run_id = child.environ().get("PREFECT__FLOW_RUN_ID")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if run_id:
            return run_id
    return None


def kill_tree(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker process and every process it started (its flow run)."""
    procs = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    worker.wait(timeout=30)


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
    slow_pg_world: ArchiveWorld, tmp_path: Path
) -> None:
    world = slow_pg_world
    uuids = world.sim.seed(RECORDINGS)
    source = tmp_path / "ids.csv"
    source.write_text(
        "recording_uuid,call_uuid\n"
        + "".join(f"{u},{world.sim.recording(u).call_uuid}\n" for u in uuids)
    )
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="tenios-archive", type="process"))
        except ObjectAlreadyExists:
            pass
    _prefect(world, "--no-prompt", "deploy", "--all")
    with get_client(sync_client=True) as client:
        backfill = client.read_deployment_by_name("backfill/backfill")
        parent = client.create_flow_run_from_deployment(
            backfill.id,
            parameters={
                "source_file": str(source),
                "workers": WORKERS,
                "concurrency": 2,
                "batch_size": 5,
                "max_wait_seconds": 60.0,
            },
        )
    workers = [
        _start(
            world,
            *("worker", "start", "--pool", "tenios-archive"),
            *("--work-queue", "archive-workers", "--limit", "1"),
            log=tmp_path / f"worker-{n}.log",
        )
        for n in range(WORKERS)
    ]
    runner = _start(
        world,
        *("worker", "start", "--pool", "tenios-archive", "--work-queue", "default"),
        "--run-once",
        log=tmp_path / "parent.log",
    )
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
        assert runner.wait(timeout=900) == 0, (tmp_path / "parent.log").read_text()
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
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="tenios-archive", type="process"))
        except ObjectAlreadyExists:
            pass
    _prefect(world, "--no-prompt", "deploy", "--all")
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly-archive/nightly-archive")
        parent = client.create_flow_run_from_deployment(
            nightly.id,
            parameters={"workers": 2, "concurrency": 2, "batch_size": 5},
        )
    procs = [
        _start(
            world,
            *("worker", "start", "--pool", "tenios-archive"),
            *("--work-queue", "archive-workers", "--limit", "1"),
            log=tmp_path / f"worker-{n}.log",
        )
        for n in range(2)
    ]
    runner = _start(
        world,
        *("worker", "start", "--pool", "tenios-archive", "--work-queue", "default"),
        "--run-once",
        log=tmp_path / "parent.log",
    )
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
    ledger.engine.dispose()
