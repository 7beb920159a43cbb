"""256 recordings in flight from one process (``--in-flight 256``), on each ledger
backend: a SIGKILL of the whole run in the middle still ends, after a re-run, with
exactly one object per recording and a chain that verifies; a run-wide stop (the
access key refused mid-run) fails nothing and gives back every claim it did not
finish without spending an attempt."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flows.nightly import nightly_archive
from tenios_io.ledger import State
from tests.acceptance.conftest import ArchiveWorld
from tests.acceptance.test_crash import ROOT, _child_env, assert_consistent, run_and_kill

IN_FLIGHT = ("--in-flight", "256", "--concurrency", "4", "--batch-size", "50")
COUNT = 300


@pytest.mark.slow
def test_sigkill_with_256_in_flight_then_rerun(world: ArchiveWorld) -> None:
    uuids = world.sim.seed(COUNT, seconds=0.5)
    world.register(uuids)
    run_and_kill(world, "after_upload", *IN_FLIGHT)
    ledger = world.ledger()
    assert ledger.counts()[State.IN_PROGRESS] >= 1  # the dead run's claims
    ledger.engine.dispose()
    result = nightly_archive(max_wait_seconds=60, in_flight=256)  # after the leases end
    assert result["exit_code"] == 0
    assert_consistent(world, uuids)


@pytest.mark.slow
def test_a_run_wide_stop_with_256_in_flight_fails_nothing(world: ArchiveWorld) -> None:
    uuids = world.sim.seed(COUNT, seconds=0.5)
    world.register(uuids)
    world.sim.schedule_faults(*["ok"] * 40, "403")  # the key is refused mid-run
    env = {k: v for k, v in _child_env(world).items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "tenios_io.cli", "run", "nightly", *IN_FLIGHT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TENIOS_ACCESS_KEY" in done.stderr
    ledger = world.ledger()
    states = {u: ledger.get(u) for u in uuids}
    archived = [u for u, r in states.items() if r.state is State.ARCHIVED]
    given_back = [u for u, r in states.items() if r.state is State.PENDING]
    assert sorted(archived + given_back) == sorted(uuids)  # nothing failed, nothing held
    assert given_back and all(states[u].attempts == 0 for u in given_back)
    ledger.integrate_all()
    assert len(ledger.events_named(["run_stopped"], None, None)) == 1
    ledger.engine.dispose()
    result = nightly_archive(max_wait_seconds=10, in_flight=256)  # the key works again
    assert result["exit_code"] == 0
    assert_consistent(world, uuids)
