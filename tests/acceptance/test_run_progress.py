"""The progress listener is passed in: the one given to the in-process run hears every
byte fetched, every recording's outcome and what the drop sweep discovered, from the
CLI's side of the run loop down to the archiver and the sweep.  Through a Prefect API
the flow's tasks report no events: the CLI's bar follows the ledger instead
(tenios_io.run.progress_poll) and still sees every outcome and what the sweep found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from tenios_io.cli._runview import RunProgress
from tenios_io.config import load_settings
from tenios_io.ledger import State
from tenios_io.run.options import RunOptions
from tenios_io.run.pipeline import open_pipeline
from tenios_io.run.session import in_process_actor, run_in_process, sweep_first
from tenios_io.testing import ProgressRecorder
from tests.acceptance.conftest import ArchiveWorld, deliver
from tests.fixtures.cli import CliResult


def _run(progress: ProgressRecorder) -> dict[str, object]:
    actor = in_process_actor("progress-test")
    options = RunOptions(concurrency=2, batch_size=2, max_wait_seconds=30)
    with open_pipeline(load_settings(), actor=actor, concurrency=2) as pipeline:
        pipeline.preflight()
        pipeline.report_to(progress)
        return run_in_process(pipeline, options, actor=actor, before=sweep_first).to_dict()


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


class RecordingBar(RunProgress):
    """The CLI's real bar, also keeping what it was told."""

    def __init__(self, console: Console, total: int | None, *, fetched: bool = True) -> None:
        super().__init__(console, total, fetched=fetched)
        self.told_total = total
        self.shows_bytes = fetched
        self.heard = ProgressRecorder()

    def bytes_fetched(self, n: int) -> None:
        super().bytes_fetched(n)
        self.heard.bytes_fetched(n)

    def recording_done(self, outcome: str, size: int) -> None:
        super().recording_done(outcome, size)
        self.heard.recording_done(outcome, size)

    def discovered(self, n: int) -> None:
        super().discovered(n)
        self.heard.discovered(n)


def test_through_a_prefect_api_the_bar_follows_the_ledger(
    world: ArchiveWorld,
    drop: Path,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_drop = world.sim.seed(3)
    for u in from_drop:
        deliver(world, drop, u, f"{u}.wav")
    api_only = world.sim.seed(1)
    world.register(api_only)
    bars: list[RecordingBar] = []

    def bar(console: Console, total: int | None, *, fetched: bool = True) -> RecordingBar:
        bars.append(RecordingBar(console, total, fetched=fetched))
        return bars[-1]

    monkeypatch.setattr("tenios_io.cli._running.RunProgress", bar)
    result = cli("run", "nightly", "--concurrency", "2", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    (seen,) = bars
    assert not seen.shows_bytes and seen.heard.bytes == 0  # the ledger knows no bytes
    assert seen.told_total == 1  # due at the preflight; the drop is swept by the flow
    assert seen.heard.found == 3
    assert seen.heard.done == ["archived"] * 4  # one by one, up to the run's total
    task = seen._progress.tasks[0]
    assert (task.completed, task.total) == (4, 4)
    ledger = world.ledger()
    assert {ledger.get(u).state for u in [*from_drop, *api_only]} == {State.ARCHIVED}
    ledger.engine.dispose()
