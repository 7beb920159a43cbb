"""Prefect's cancellation of a flow run takes the clean-stop path of the first
SIGTERM (issue 12 item 2), for real: the nightly deployment (`prefect deploy --all`)
run by a process worker (`prefect worker start --run-once`) on the session's Prefect
server, against the simulator over HTTP (answering slowly), moto and both ledger
backends.  The run is cancelled through the Prefect API while it archives.

The worker delivers the cancellation as SIGTERM to the flow run's process group; the
run stops claiming, lets the recordings in flight finish or gives them back (no
attempt spent), records one ``run_stopped`` event and ends Cancelled; nothing is left
``in_progress`` (no waiting for leases to end) and the next run archives the rest,
each recording exactly once.  The test acts on what the run shows (rows archived in
the ledger, the flow run's state), never after a guessed delay."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling

from tenios_io.ledger import Ledger, State
from tenios_io.simulator import FaultPlan, Simulator
from tests.acceptance.conftest import ArchiveWorld, _make_world
from tests.acceptance.prefect_processes import (
    archived_by_actor,
    deploy_all,
    flow_run_of,
    kill_tree,
    start_worker,
)

RECORDINGS = 24
FANNED_OUT = 200
PARAMETERS = {"concurrency": 2, "batch_size": 3}


@pytest.fixture
def slow_world(
    prefect_api_url: str,
    database_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """Every retrieve answers after up to 2 s: a batch of 3 finishes within the grace."""
    yield from _make_world(
        prefect_api_url=prefect_api_url,
        database_url=database_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=17, faults=FaultPlan(latency=2.0)),
    )


def start_nightly(world: ArchiveWorld, log: Path) -> tuple[UUID, subprocess.Popen[bytes]]:
    """A nightly-archive flow run and a worker that runs it (and only it)."""
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly-archive/nightly-archive")
        run = client.create_flow_run_from_deployment(nightly.id, parameters=PARAMETERS)
    worker = start_worker(world, "default", log, "--run-once")
    return run.id, worker


def wait_archived(world: ArchiveWorld, worker: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the ledger until the run has archived something (it is mid-run)."""
    ledger = world.ledger()
    try:
        deadline = time.monotonic() + 300
        while not ledger.counts().get(State.ARCHIVED):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "nothing archived within 5 minutes"
            time.sleep(0.1)  # polling the ledger, not waiting for a guessed moment
    finally:
        ledger.engine.dispose()


def final_state(run_id: UUID, worker: subprocess.Popen[bytes], log: Path) -> Any:
    """The flow run's state once it is final (the worker has ended)."""
    assert worker.wait(timeout=300) == 0, log.read_text()
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run_id).state
            if state is not None and state.is_final():
                return state
            assert time.monotonic() < deadline, f"flow run still {state}"
            time.sleep(0.2)  # polling the API, not waiting for a guessed moment


def final_state_of(client: Any, run_id: UUID) -> Any:
    """A flow run's state once it is final (polled with a deadline)."""
    deadline = time.monotonic() + 120
    while True:
        state = client.read_flow_run(run_id).state
        if state is not None and state.is_final():
            return state
        assert time.monotonic() < deadline, f"flow run {run_id} still {state}"
        time.sleep(0.2)  # polling the API, not waiting for a guessed moment


def check_stopped_cleanly(ledger: Ledger, uuids: list[str], *, stops: int) -> set[str]:
    """Archived after one attempt or pending with none spent, nothing in progress, the
    run stopped mid-way (``stops`` run_stopped events, by the worker's SIGTERM or by
    Prefect refusing a batch's task if that came first); returns the archived ones."""
    archived = set()
    for u in uuids:
        rec = ledger.get(u)
        assert rec.state in (State.ARCHIVED, State.PENDING), (u, rec.state)
        assert rec.lease_token is None, u
        assert rec.attempts == (1 if rec.state is State.ARCHIVED else 0), (u, rec.attempts)
        if rec.state is State.ARCHIVED:
            archived.add(u)
    assert 0 < len(archived) < len(uuids), len(archived)  # stopped mid-run
    found = ledger.events_named(["run_stopped"])
    assert len(found) == stops, found
    for stop in found:
        assert "interrupted by SIGTERM" in stop["details"] or "being cancelled" in stop["details"]
    assert ledger.verify_chain().ok
    return archived


@pytest.mark.slow
def test_cancelling_a_deployment_run_stops_it_cleanly(
    slow_world: ArchiveWorld, tmp_path: Path
) -> None:
    world = slow_world
    uuids = [world.sim.add_recording(seconds=2.0) for _ in range(RECORDINGS)]
    world.register(uuids)
    deploy_all(world)
    log = tmp_path / "worker.log"
    run_id, worker = start_nightly(world, log)
    try:
        wait_archived(world, worker, log)
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run_id, Cancelling(message="cancelled by the test"))
        state = final_state(run_id, worker, log)
    finally:
        if worker.poll() is None:
            kill_tree(worker)
    assert state.type == StateType.CANCELLED, (state, log.read_text())

    ledger = world.ledger()
    try:
        archived = check_stopped_cleanly(ledger, uuids, stops=1)
    finally:
        ledger.engine.dispose()
    # Every archived recording is in the bucket, once; the spool folder is empty.
    versions = world.versions()
    assert len(versions) == len(archived) and set(versions.values()) == {1}, versions
    assert list(Path(world.env["TENIOS_SPOOL_DIR"]).iterdir()) == []

    # The next run archives the rest, each exactly once.
    run_id, worker = start_nightly(world, tmp_path / "worker-2.log")
    try:
        state = final_state(run_id, worker, tmp_path / "worker-2.log")
    finally:
        if worker.poll() is None:
            kill_tree(worker)
    assert state.type == StateType.COMPLETED, state
    ledger = world.ledger()
    try:
        assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    finally:
        ledger.engine.dispose()
    versions = world.versions()
    assert len(versions) == RECORDINGS and set(versions.values()) == {1}, versions


@pytest.mark.slow
def test_cancelling_a_fanned_out_run_cancels_its_workers_cleanly(
    slow_pg_world: ArchiveWorld, tmp_path: Path
) -> None:
    """The nightly deployment with workers=2 (two archive-worker runs on two worker
    processes) cancelled mid-run through the API: the parent cancels its worker runs,
    each stops cleanly (one run_stopped event each, nothing left in_progress, no
    attempt spent on what was given back), all end Cancelled; the next run archives
    the rest exactly once."""
    world = slow_pg_world
    uuids = world.sim.seed(FANNED_OUT)
    world.register(uuids)
    deploy_all(world)
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly-archive/nightly-archive")
        parent = client.create_flow_run_from_deployment(
            nightly.id, parameters={"workers": 2, "concurrency": 2, "batch_size": 5}
        )
    workers = [
        start_worker(world, "archive-workers", tmp_path / f"worker-{n}.log", "--limit", "1")
        for n in range(2)
    ]
    log = tmp_path / "parent.log"
    runner = start_worker(world, "default", log, "--run-once")
    ledger = world.ledger()
    children: set[str] = set()
    try:
        # Both worker runs are mid-run (each has archived something) before the cancel:
        # on a loaded machine the second may start seconds after the first.
        deadline = time.monotonic() + 600
        working: set[str] = set()
        while len(working) < 2:
            assert runner.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker runs never archived"
            children |= {run for w in workers if (run := flow_run_of(w))}
            done = archived_by_actor(ledger)
            working = {run for run in children if any(f":{run}@" in a for a in done)}
            time.sleep(0.5)  # polling the processes and the ledger, not a guessed moment
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(parent.id, Cancelling(message="cancelled by the test"))
        state = final_state(parent.id, runner, log)
        with get_client(sync_client=True) as client:
            ends = {run: final_state_of(client, UUID(run)) for run in children}
    finally:
        for proc in [runner, *workers]:
            if proc.poll() is None:
                kill_tree(proc)
    assert state.type == StateType.CANCELLED, (state, log.read_text())
    assert {s.type for s in ends.values()} == {StateType.CANCELLED}, ends
    try:
        archived = check_stopped_cleanly(ledger, uuids, stops=len(children))
    finally:
        ledger.engine.dispose()
    versions = world.versions()
    assert len(versions) == len(archived) and set(versions.values()) == {1}, versions

    run_id, worker = start_nightly(world, tmp_path / "worker-2.log")
    try:
        assert final_state(run_id, worker, tmp_path / "worker-2.log").type == StateType.COMPLETED
    finally:
        if worker.poll() is None:
            kill_tree(worker)
    ledger = world.ledger()
    try:
        assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    finally:
        ledger.engine.dispose()
    versions = world.versions()
    assert len(versions) == len(uuids) and set(versions.values()) == {1}, versions
