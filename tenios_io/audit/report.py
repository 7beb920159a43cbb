"""The compliance report: one pass over the ledger, written as HTML, CSV, JSONL and JSON.

:func:`build_report` reads the recordings in the period once, streaming them into
the CSV and JSONL exports while it counts states, bytes and archivals per day,
then gathers the custody events of the period (discrepancies, purges, refusals),
retention due, legal holds, verification coverage, and the chain and checkpoint
status.  The files, written atomically into the output directory:

``report.html``
    self-contained (inline CSS and SVG, no script, no external asset);
``recordings.csv`` / ``recordings.jsonl``
    the recordings in the period, columns as ``ledger export`` plus
    ``custody_log_leaves``: the leaf indexes of the recording's custody events in the
    custody log (the events the latest signed checkpoint covers; an auditor proves
    each with ``audit prove``);
``summary.json``
    the report's figures, for other tools.

A recording is in the period when it was registered or archived in it.  Dates are
UTC days; ``end`` is inclusive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

from tenios_io import __version__
from tenios_io.audit.export import EXPORT_COLUMNS, RowWriter, export_row
from tenios_io.audit.report_data import (
    FAILURE_STATES,
    MAX_ROWS,
    AuditReport,
    Coverage,
    EventEntry,
    Period,
)
from tenios_io.audit.report_html import render_html
from tenios_io.audit.retention import retention_overview
from tenios_io.files import atomic_text_file
from tenios_io.ledger import Ledger, Recording, State
from tenios_io.publish.checkpoints import check_checkpoints
from tenios_io.publish.log import latest_log_checkpoint
from tenios_io.sftp.naming import AMBIGUOUS_EVENT
from tenios_io.store import ArchiveStore

#: The report's CSV / JSONL: ``ledger export``'s columns, then the custody log's leaf
#: indexes of the recording's events (those its latest checkpoint covers).
REPORT_COLUMNS: tuple[str, ...] = (*EXPORT_COLUMNS, "custody_log_leaves")


def build_report(
    ledger: Ledger,
    out_dir: Path,
    *,
    period: Period | None = None,
    store: ArchiveStore | None = None,
    due_within_days: int = 30,
    cycle_days: int = 30,
    integrate: bool = True,
) -> AuditReport:
    """Gather the report for ``period`` and write its files into ``out_dir``.

    With ``integrate`` the queued custody events are integrated before the chain is
    verified; either way the report says how many were still queued (not covered)."""
    period = period or Period()
    out_dir.mkdir(parents=True, exist_ok=True)
    report = AuditReport(
        generated_at=ledger.now(),
        period=period,
        tool_version=__version__,
        database=ledger.engine.dialect.name,
        bucket=store.bucket if store is not None else None,
    )
    if integrate:
        ledger.integrate_all()  # the events' leaf indexes below come from the chain
    report.custody_log = latest_log_checkpoint(ledger)
    logged = report.custody_log.size if report.custody_log is not None else 0
    with (
        atomic_text_file(out_dir / "recordings.csv") as csv_file,
        atomic_text_file(out_dir / "recordings.jsonl") as jsonl_file,
    ):
        writer = RowWriter(csv_file, jsonl_file, REPORT_COLUMNS)
        for page in _pages(ledger.iter_in_period(period.start_at, period.end_before)):
            seqs = ledger.event_seqs([rec.recording_uuid for rec in page], up_to=logged)
            for rec in page:
                # Leaf i of the custody log is the event with sequence number i + 1.
                leaves = [seq - 1 for seq in seqs[rec.recording_uuid]]
                writer.write({**export_row(rec), "custody_log_leaves": leaves})
                _count(report, rec)
    report.ledger_states = {s.value: n for s, n in ledger.counts().items()}
    report.discrepancies = _discrepancies(ledger, period)
    report.purges = _events(ledger, ["purged"], period)
    report.refusals = _events(ledger, ["purge_refused"], period)
    report.accesses = _events(ledger, ["exported"], period)
    report.holds = ledger.on_legal_hold()
    report.retention = retention_overview(ledger, within_days=due_within_days)
    recent, never, oldest = ledger.verification_coverage(
        report.generated_at - timedelta(days=cycle_days)
    )
    report.coverage = Coverage(cycle_days, ledger.count_archived(), recent, never, oldest)
    report.chain = ledger.verify_chain(integrate=integrate)
    report.in_progress = ledger.in_progress(limit=MAX_ROWS)[1]
    report.shared_content = ledger.shared_content()
    report.ambiguous_drop_files = _ambiguous_drop_files(ledger, period)
    if store is not None:
        report.checkpoints = check_checkpoints(ledger, store)
    report.files = {
        "html": out_dir / "report.html",
        "csv": out_dir / "recordings.csv",
        "jsonl": out_dir / "recordings.jsonl",
        "summary": out_dir / "summary.json",
    }
    with atomic_text_file(report.files["summary"]) as handle:
        json.dump(report.summary(), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    with atomic_text_file(report.files["html"]) as handle:
        handle.write(render_html(report))
    return report


def _pages(recordings: Iterator[Recording], size: int = 1000) -> Iterator[list[Recording]]:
    page: list[Recording] = []
    for rec in recordings:
        page.append(rec)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def _count(report: AuditReport, rec: Recording) -> None:
    report.recordings += 1
    if rec.recorded_at is None:
        report.without_recorded_at += 1
    report.states[rec.state.value] += 1
    if rec.state is State.ARCHIVED and rec.size_bytes:
        report.archived_bytes += rec.size_bytes
    if rec.state is State.ARCHIVED and rec.duration_seconds:
        report.archived_seconds += rec.duration_seconds
    if rec.archived_at is not None and report.period.contains(rec.archived_at):
        report.archived_per_day[rec.archived_at.astimezone(UTC).date()] += 1
    if rec.state in FAILURE_STATES:
        report.failure_count += 1
        if len(report.failures) < MAX_ROWS:
            report.failures.append(rec)


def _events(ledger: Ledger, names: list[str], period: Period) -> list[EventEntry]:
    return [
        EventEntry(
            seq=int(row["seq"]),
            occurred_at=str(row["occurred_at"]),
            recording_uuid=row["recording_uuid"],
            event=str(row["event"]),
            actor=str(row["actor"]),
            details=json.loads(row["details"]),
        )
        for row in ledger.events_named(names, period.start_at, period.end_before)
    ]


def _ambiguous_drop_files(ledger: Ledger, period: Period) -> list[dict[str, str]]:
    """The files the period's last SFTP sweep left alone (their names matched no row)."""
    sweeps = _events(ledger, [AMBIGUOUS_EVENT], period)
    if not sweeps:
        return []
    files = sweeps[-1].details.get("files", [])
    return [{"path": str(f.get("path")), "why": str(f.get("why"))} for f in files]


def _discrepancies(ledger: Ledger, period: Period) -> list[EventEntry]:
    """Discrepancy events of the period, each marked resolved if a later check verified it."""
    entries = _events(ledger, ["discrepancy"], period)
    last_verified: dict[str, int] = {}
    for uuid in {e.recording_uuid for e in entries if e.recording_uuid}:
        seqs = [int(ev["seq"]) for ev in ledger.events(uuid) if ev["event"] == "verified"]
        last_verified[uuid] = max(seqs, default=-1)
    return [
        replace(entry, resolved=last_verified.get(entry.recording_uuid or "", -1) > entry.seq)
        for entry in entries
    ]
