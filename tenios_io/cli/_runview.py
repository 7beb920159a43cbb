"""What the operator sees of a run: a live progress bar and the final summary table."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich import filesize
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tenios_io.cli._common import shown

#: Outcomes after which a recording is done for this run (retries are not).
FINAL = frozenset({"archived", "already_archived", "missing", "failed", "conflict"})


class _BinarySpeedColumn(TransferSpeedColumn):
    """Rich's transfer speed in MiB/s (its own column says MB/s): one unit everywhere."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("?", style="progress.data.speed")
        unit, suffix = filesize.pick_unit_and_suffix(
            int(speed), ["B", "KiB", "MiB", "GiB", "TiB"], 1024
        )
        return Text(f"{speed / unit:.1f} {suffix}/s", style="progress.data.speed")


class RunProgress:
    """A progress listener drawing recordings (with ETA) and bytes (with rate).

    The clock starts at the first recording event, not when the bar is drawn: the
    Prefect start-up, the preflight and the drop sweep before it are not archiving
    time, and the summary's "time" does not count them either.  It stops with the last
    recording (Rich freezes a finished task's elapsed time), and the bar never shows
    more done than its total: recordings that became due during the run (a lease that
    ran out, a retry whose wait ended) raise the total with them.  Without ``fetched``
    the bytes line is left out (a run followed through the ledger hears no bytes).
    """

    def __init__(self, console: Console, total: int | None, *, fetched: bool = True) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("•"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._bytes = Progress(
            TextColumn("{task.description:<10}"),
            DownloadColumn(binary_units=True),  # MiB, as the summary and the report
            TextColumn("•"),
            _BinarySpeedColumn(),
            console=console,
        )
        self._recordings = self._progress.add_task("recordings", total=total, start=False)
        self._data = self._bytes.add_task("fetched", total=None, start=False)
        self._lock = threading.Lock()
        self._started = False
        self._fetched = fetched

    def _start(self) -> None:
        """Start both clocks at the first event (caller holds the lock)."""
        if not self._started:
            self._started = True
            self._progress.start_task(self._recordings)
            self._bytes.start_task(self._data)

    def bytes_fetched(self, n: int) -> None:
        with self._lock:
            self._start()
            self._bytes.advance(self._data, n)

    def discovered(self, n: int) -> None:
        with self._lock:
            task = self._progress.tasks[0]
            if task.total is not None and n:
                self._progress.update(self._recordings, total=task.total + n)

    def recording_done(self, outcome: str, size: int) -> None:
        if outcome in FINAL:
            with self._lock:
                self._start()
                task = self._progress.tasks[0]
                if task.total is not None and task.completed + 1 > task.total:
                    self._progress.update(self._recordings, total=task.completed + 1)
                self._progress.advance(self._recordings, 1)

    @contextmanager
    def shown(self) -> Iterator[None]:
        from rich.console import Group
        from rich.live import Live

        with Live(
            Group(self._progress, self._bytes) if self._fetched else self._progress,
            console=self._progress.console,
            refresh_per_second=8,
            transient=False,
        ):
            yield


#: What each outcome row of the summary means (issue 27: "retry 1, total 51" for 50
#: recordings was unexplained).
MEANING = {
    "archived": "uploaded and verified in this run",
    "already_archived": "the bucket already held the same bytes",
    "retry": "left for a later try",
    "missing": "still 404 after the grace period (TENIOS_NOT_FOUND_GRACE_HOURS)",
    "failed": "gave up (see below; `ledger requeue` after fixing the cause)",
    "conflict": "the bucket holds different bytes under the key (never overwritten)",
    "lost_lease": "another worker took it over (lease expired)",
    "released": "claim given back unworked (time budget or stop); due again",
    "unreleased": "claim not given back (ledger down); due when its lease ends",
}


def _retry_meaning(result: Mapping[str, Any]) -> str:
    """The retry row's reasons by kind, e.g. "not ready yet (404): 2"."""
    reasons: Mapping[str, int] = result.get("retry_reasons") or {}
    if not reasons:
        return MEANING["retry"]
    kinds = ", ".join(f"{escape(k)}: {n:,}" for k, n in sorted(reasons.items()))
    return f"{MEANING['retry']} — {kinds}"


def summary_table(result: Mapping[str, Any], title: str) -> Table:
    """The run's summary: recordings per outcome and why, bytes, throughput (when
    something was archived), per source."""
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("recordings", justify="right")
    table.add_column("meaning", overflow="fold")
    counts: Mapping[str, int] = result["counts"]
    for outcome, n in sorted(counts.items()):
        meaning = _retry_meaning(result) if outcome == "retry" else MEANING.get(outcome, "")
        table.add_row(outcome, f"{n:,}", meaning)
    attempts = sum(counts.values())
    recordings = int(result.get("recordings", attempts))
    table.add_row("[bold]total[/]", f"{recordings:,}", "recordings, each counted once")
    if attempts != recordings:
        table.add_row("attempts", f"{attempts:,}", "a retried recording is tried again")
    secs = max(float(result["seconds"]), 1e-9)
    mib = result["bytes_archived"] / 2**20  # MiB everywhere: summary, bar, report
    table.add_section()
    table.add_row("bytes archived", f"{mib:,.1f} MiB")
    table.add_row("time", f"{secs:,.1f} s")
    if counts.get("archived"):  # a rate for a run that archived nothing means nothing
        table.add_row("throughput", f"{recordings / secs:,.1f} rec/s, {mib / secs:,.1f} MiB/s")
    for source, n in sorted(result.get("per_source", {}).items()):
        table.add_row(f"from {source}", f"{n:,}")
    sweep = result.get("sweep")
    if sweep and sweep.get("unavailable"):
        table.add_section()
        table.add_row("SFTP drop", f"[yellow]{escape(str(sweep['unavailable']))}[/]")
    elif sweep:
        table.add_section()
        table.add_row("SFTP drop: ready files", f"{sweep['ready']:,}")
        table.add_row("  newly registered", f"{sweep['registered']:,}")
        table.add_row("  still being written", f"{sweep['unsettled']:,}")
        table.add_row("  names not matching", f"{sweep['unmatched']:,}")
        ambiguous = int(sweep.get("ambiguous", 0))
        table.add_row(
            "  ambiguous names (left alone)",
            f"{ambiguous:,}",
            style="yellow" if ambiguous else None,
        )
        skipped = int(sweep.get("skipped", 0))
        if skipped:
            table.add_row("  unreadable names (left alone)", f"{skipped:,}", style="yellow")
        incomplete = int(sweep.get("incomplete", 0))
        if incomplete:
            table.add_row("  incomplete containers (left alone)", f"{incomplete:,}", style="yellow")
        table.add_row("  released by the sweep", f"{sweep['released']:,}", "archived earlier")
        table.add_row(
            "  released after archiving",
            f"{int(result.get('released_from_drop', 0)):,}",
            "moved or deleted (TENIOS_SFTP_AFTER)",
        )
        interrupted = int(sweep.get("interrupted_releases", 0))
        if interrupted:
            table.add_row("  interrupted releases settled", f"{interrupted:,}")
        if sweep.get("stopped"):
            table.add_row("  sweep stopped early (signal)", "the next run sweeps the rest")
        waiting = int(sweep.get("waiting_for_drop", 0))
        if waiting:
            table.add_row("  held for their file (not fetched)", f"{waiting:,}")
        again = result.get("drop_second_look")
        if again is not None:
            table.add_row(
                "  second look once settled",
                shown(again["error"])
                if "error" in again
                else f"{again.get('ready', 0):,} ready, {again.get('registered', 0):,} new, "
                f"{again.get('unsettled', 0):,} still being written",
            )
        if result.get("drop_settling"):
            table.add_row("  [yellow]settling[/]", shown(str(result["drop_settling"])))
        for path, why in [
            *sweep.get("ambiguous_files", [])[:5],
            *sweep.get("incomplete_files", [])[:5],
            *sweep.get("skipped_files", [])[:5],
        ]:
            table.add_row(f"  [yellow]{shown(path)}[/]", shown(why))
        if ambiguous:
            table.caption = (
                "Ambiguous drop files are not archived until TENIOS_SFTP_PATTERN says which "
                "UUID is the recording_uuid (or the recording is registered first)."
            )
    witnesses = (result.get("checkpoint") or {}).get("witnesses")
    if witnesses:
        table.add_section()
        style = "red" if witnesses.get("forked") else None if witnesses["witnessed"] else "yellow"
        table.add_row("custody witnesses", shown(witnesses["summary"]), style=style)
    return table


def claimed_elsewhere_table(result: Mapping[str, Any], limit: int = 10) -> Table | None:
    """Recordings another worker held when the run started (None when there were none):
    if no other run is active, that worker died; its claims return when the lease ends."""
    held = result.get("claimed_elsewhere") or {}
    rows = held.get("recordings") or []
    if not rows:
        return None
    table = Table(
        title=f"{len(rows)} recording(s) were claimed by another worker when this run started",
        caption="If no other run is active, that worker died: its claims are taken over "
        "when their lease ends (no attempt is lost).",
    )
    table.add_column("recording_uuid", no_wrap=True)
    table.add_column("lease ends in", justify="right")
    table.add_column("claimed by", overflow="fold")
    for row in rows[:limit]:
        seconds = row.get("lease_ends_in_seconds")
        ends = "—" if seconds is None else f"{int(seconds) // 60}m {int(seconds) % 60:02d}s"
        table.add_row(row["recording_uuid"], ends, escape(str(row.get("owner") or "")))
    return table


def problems_table(result: Mapping[str, Any], limit: int = 20) -> Table | None:
    """The recordings that need attention, with reasons (None when there are none)."""
    problems = result.get("problems") or []
    if not problems:
        return None
    table = Table(title=f"{len(problems)} recording(s) need attention")
    table.add_column("recording_uuid", no_wrap=True)
    table.add_column("outcome")
    table.add_column("reason", overflow="fold")
    for p in problems[:limit]:
        table.add_row(p["recording_uuid"], p["outcome"], p["reason"] or "")
    if len(problems) > limit:
        table.caption = (
            f"… and {len(problems) - limit} more: tenios-archive ledger list --state failed"
        )
    return table


def duplicate_content_table(result: Mapping[str, Any], limit: int = 20) -> Table | None:
    """Recordings archived with bytes already archived under another id (None when
    there are none): archived and flagged, for a person to check with TENIOS."""
    found = result.get("duplicate_content") or []
    if not found:
        return None
    table = Table(
        title=f"{len(found)} recording(s) archived with content already archived under "
        "another id (duplicate_content events)"
    )
    table.add_column("recording_uuid", no_wrap=True)
    table.add_column("same SHA-256 as", overflow="fold")
    for row in found[:limit]:
        table.add_row(row["recording_uuid"], ", ".join(row["same_content_as"]))
    if len(found) > limit:
        table.caption = f"… and {len(found) - limit} more: tenios-archive audit reconcile"
    return table
