"""The run summary says what the SFTP sweep could not do: a drop that was down,
containers not complete yet, releases an earlier run left unfinished."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from tenios_io.cli._runview import summary_table
from tenios_io.sftp.sweep import SweepReport


def _text(sweep: SweepReport) -> str:
    result: dict[str, Any] = {
        "counts": {"archived": 2},
        "seconds": 1.0,
        "bytes_archived": 0,
        "per_source": {"api": 2},
        "sweep": sweep.to_dict(),
    }
    console = Console(file=io.StringIO(), width=200)
    console.print(summary_table(result, "nightly"))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_drop_that_was_down_is_said() -> None:
    text = _text(SweepReport(unavailable="the SFTP drop is down for this run (refused)"))
    assert "SFTP drop" in text and "down for this run" in text
    assert "ready files" not in text  # no sweep figures that were never measured


def test_incomplete_containers_and_settled_releases_are_listed() -> None:
    text = _text(
        SweepReport(
            ready=1,
            unsettled=1,
            incomplete=1,
            incomplete_files=[("/drop/a.wav", "WAV header says 2000 bytes, the file has 1000")],
            released=2,
            interrupted_releases=1,
        )
    )
    assert "incomplete containers (left alone)" in text and "/drop/a.wav" in text
    assert "the file has 1000" in text and "interrupted releases settled" in text


def test_each_row_says_what_it_means_and_releases_after_archiving_are_counted() -> None:
    """Issue 27: "released (pending) 0" while 42 drop files were moved; throughput for
    a run that archived nothing; totals of attempts, not recordings."""
    result: dict[str, Any] = {
        "counts": {"retry": 3, "already_archived": 1},
        "recordings": 3,
        "retry_reasons": {"not ready yet (404)": 2, "TeniosServerError": 1},
        "released_from_drop": 42,
        "seconds": 2.0,
        "bytes_archived": 0,
        "per_source": {},
        "sweep": SweepReport(ready=1).to_dict(),
    }
    console = Console(file=io.StringIO(), width=200)
    console.print(summary_table(result, "nightly"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "not ready yet (404): 2" in text and "TeniosServerError: 1" in text
    assert "the bucket already held the same bytes" in text
    assert "released after archiving" in text and "42" in text
    assert "released (pending)" not in text
    total = next(line for line in text.splitlines() if "total" in line)
    assert " 3 " in total and "attempts" in text  # 3 recordings, 4 attempts
    assert "throughput" not in text
