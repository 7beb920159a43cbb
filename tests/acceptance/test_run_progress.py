"""The progress listener is passed in: the one given to the in-process run hears every
byte fetched, every recording's outcome and what the drop sweep discovered, from the
CLI's side of the run loop down to the archiver and the sweep."""

from __future__ import annotations

from pathlib import Path

from tenios_io.config import load_settings
from tenios_io.runloop import run_in_process, sweep_first
from tenios_io.testing import ProgressRecorder
from tests.acceptance.conftest import ArchiveWorld, deliver


def _run(progress: ProgressRecorder) -> dict[str, object]:
    return run_in_process(
        load_settings(),
        name="progress-test",
        concurrency=2,
        limit=None,
        batch_size=2,
        time_budget_minutes=None,
        max_wait_seconds=30,
        before=sweep_first,
        progress=progress,
    ).to_dict()


def test_the_listener_passed_to_the_run_hears_the_sweep_fetches_and_outcomes(
    world: ArchiveWorld, drop: Path
) -> None:
    from_drop = world.sim.seed(3)
    for u in from_drop:
        deliver(world, drop, u, f"{u}.wav")
    api_only = world.sim.seed(1)
    world.register(api_only)
    recorder = ProgressRecorder()
    result = _run(recorder)
    assert result["exit_code"] == 0
    assert recorder.found == 3  # registered by the sweep during the run
    assert recorder.done == ["archived"] * 4
    expected = sum(len(world.sim.expected_bytes(u)) for u in [*from_drop, *api_only])
    assert recorder.bytes == expected == result["bytes_archived"]
