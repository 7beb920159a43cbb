"""The run's progress bar agrees with its summary (issue 12 item 9): its clock runs from
the first recording to the last, as the summary's "time" does, not from before the
Prefect start-up; and it never shows more recordings done than its total (it showed
32/30 when recordings became due during the run)."""

from __future__ import annotations

import io

from rich.console import Console

from tenios_io.cli._runview import RunProgress


def _view(total: int | None) -> RunProgress:
    return RunProgress(Console(file=io.StringIO(), width=120), total)


def test_the_clock_starts_at_the_first_recording_event() -> None:
    view = _view(2)
    task = view._progress.tasks[0]
    assert not task.started and task.elapsed is None  # Prefect starting, preflight ...
    view.bytes_fetched(1000)
    assert task.started and view._bytes.tasks[0].started
    view.recording_done("archived", 1000)
    view.recording_done("failed", 0)
    assert task.finished  # elapsed frozen at the last recording, not at the bar's end


def test_done_never_exceeds_the_total() -> None:
    view = _view(2)
    task = view._progress.tasks[0]
    for _ in range(4):
        view.recording_done("archived", 10)
    assert (task.completed, task.total) == (4, 4)
    view.recording_done("retry_scheduled", 0)  # not final: not counted
    assert (task.completed, task.total) == (4, 4)
    view.discovered(3)
    assert task.total == 7 and not task.finished


def test_without_a_total_it_only_counts() -> None:
    view = _view(None)
    view.recording_done("archived", 10)
    task = view._progress.tasks[0]
    assert (task.completed, task.total) == (1, None)


def test_a_bar_without_bytes_draws_recordings_only() -> None:
    out = io.StringIO()
    view = RunProgress(Console(file=out, width=120), 3, fetched=False)
    with view.shown():
        view.recording_done("archived", 0)
    drawn = out.getvalue()
    assert "recordings" in drawn and "1/3" in drawn
    assert "fetched" not in drawn
    full = io.StringIO()
    with RunProgress(Console(file=full, width=120), 3).shown():
        pass
    assert "fetched" in full.getvalue()
