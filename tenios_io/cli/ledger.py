"""`tenios-archive ledger ...`: register, inspect, export and requeue recordings."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

# Module-level imports stay light (`--help` and usage errors load no SQLAlchemy, issue
# 27); the ledger, the audit package (boto3) and mutagen are imported inside the
# commands that use them.
from tenios_io.cli._common import cli_actor, console, err_console, output_file, settings, shown
from tenios_io.cli._importing import import_line
from tenios_io.cli.ledger_stats import stats
from tenios_io.exceptions import ImportFileError, UnknownRecording
from tenios_io.ledger import State, open_ledger  # both light: tenios_io/ledger/__init__.py

if TYPE_CHECKING:
    from tenios_io.ledger.intake import IntakeState

app = typer.Typer(
    help="The ledger: which recordings exist, their state, and their custody events.",
    no_args_is_help=True,
)
app.command()(stats)


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def _uuid_arg(value: str) -> str:
    from tenios_io.ledger.importing import parse_uuid

    try:
        return parse_uuid(value, line=0, column="")
    except ImportFileError:
        raise typer.BadParameter(
            f"{value!r} is not a UUID (expected e.g. 8101fcb3-3843-4db3-9829-f7ab586625fe)"
        ) from None


@app.command()
def add(
    ctx: typer.Context,
    recording_uuids: Annotated[
        list[str], typer.Argument(help="One or more recording_uuids.", metavar="UUID...")
    ],
    call_uuid: Annotated[
        str | None, typer.Option(help="The call the recordings belong to.")
    ] = None,
) -> None:
    """Register recordings to archive. Known ones are left as they are (and reported)."""
    ids = [_uuid_arg(u) for u in recording_uuids]
    call = _uuid_arg(call_uuid) if call_uuid else None
    with open_ledger(settings(ctx), actor=cli_actor("ledger-add")) as ledger:
        from tenios_io.ledger import NewRecording

        result = ledger.register([NewRecording(i, call_uuid=call) for i in ids])
    for key in result.added:
        console.print(f"added   {key}")
    for key in result.known:
        console.print(f"known   {key} (unchanged)")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header containing recording_uuid (optional call_uuid, "
            "recorded_at), or one uuid per line.",
            show_default=False,
        ),
    ],
) -> None:
    """Register every recording in FILE, all-or-nothing.

    A malformed uuid or date names its line and column and imports nothing from the
    file. Re-importing the same file changes nothing.
    """
    # SIGINT / SIGTERM: the import ends after the chunk being merged (what was merged
    # stays, whole chunks), says how far it got and exits 130 / 143; a second signal
    # ends it at once (the chunk in its transaction is rolled back).
    from tenios_io.ledger.importing import iter_import_file
    from tenios_io.run.interrupt import Interruption, RunInterrupted

    interruption = Interruption()
    try:
        with interruption.installed(), _progress() as progress:
            task = progress.add_task("importing (lines read)", total=None)
            # Opened first: a missing file, a directory, an unreadable one is one line
            # (ImportFileError, exit 2) before the ledger is touched.
            records = iter_import_file(file, progress=lambda n: progress.advance(task, n))
            with open_ledger(
                settings(ctx), actor=cli_actor(f"ledger-import:{file.name}")
            ) as ledger:
                result = ledger.import_recordings(records, stop=interruption.stop)
    except RunInterrupted as exc:
        err_console.print(f"{exc}: the chunk being merged was rolled back; run it again")
        raise typer.Exit(exc.exit_code) from None
    if result.stopped:
        console.print(f"{file}: {import_line(result, interruption)}", soft_wrap=True)
        raise typer.Exit(interruption.exit_code)
    if result.read == 0:
        raise ImportFileError(
            f"{file} names no recordings (it is empty, or only blank lines, comments or a "
            "header): nothing was imported",
            line=0,
            column="-",
        )
    repeated = f", {result.duplicates:,} repeated in the file" if result.duplicates else ""
    console.print(
        f"{file}: {result.read:,} lines with a recording — {result.added:,} added, "
        f"{result.known:,} already known{repeated}",
        soft_wrap=True,
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[State | None, typer.Option(help="Only recordings in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only recordings changed since this UTC date or time (2026-12-01, "
            "2026-12-01T18:00).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per recording (every column).")
    ] = False,
) -> None:
    """List recordings (newest first): one line each with state, tries, size (MiB), when
    it last changed (UTC) and its last error (`ledger show UUID` or --json for all)."""
    changed_since = _parse_since(since) if since is not None else None
    with open_ledger(settings(ctx)) as ledger:
        rows = ledger.find(state=state, limit=limit, changed_since=changed_since)
        counts = ledger.counts()
    if as_json:
        from tenios_io.audit.export import export_row

        for rec in rows:  # JSON lines, never wrapped: for jq and other tools
            sys.stdout.write(json.dumps(export_row(rec), ensure_ascii=False) + "\n")
        return
    # One line per recording at 80 columns: the uuid whole, the error cut to what is left.
    table = Table(
        title="recordings", box=None, pad_edge=False, collapse_padding=True, header_style="bold"
    )
    table.add_column("recording_uuid", no_wrap=True, min_width=36)
    table.add_column("state", no_wrap=True, min_width=11)
    table.add_column("tries", justify="right", no_wrap=True, min_width=5)
    table.add_column("size", justify="right", no_wrap=True, min_width=8)
    table.add_column("changed", no_wrap=True, min_width=11)
    table.add_column("last error", no_wrap=True, overflow="ellipsis", ratio=1)
    for rec in rows:
        size = f"{rec.size_bytes / 2**20:,.1f} MiB" if rec.size_bytes is not None else ""
        changed = rec.updated_at.astimezone(UTC).strftime("%m-%d %H:%M")
        error = (rec.last_error or "") if rec.state is not State.ARCHIVED else ""
        # An error may quote a drop file's name: escaped (tenios_io.untrusted).
        table.add_row(
            rec.recording_uuid, rec.state.value, str(rec.attempts), size, changed, shown(error)
        )
    console.print(table)
    console.print(
        "  ".join(f"{s.value}: {n:,}" for s, n in counts.items() if n) or "the ledger is empty"
    )


def _parse_since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date or time (e.g. 2026-12-01 or 2026-12-01T18:00, UTC)",
            param_hint="--since",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command()
def intake(
    ctx: typer.Context,
    rejected: Annotated[
        bool, typer.Option("--rejected", help="Rejected rows (with the reason), not pending ones.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
) -> None:
    """Rows producers inserted into recording_intake: pending (the next run registers
    them) or rejected (malformed; kept with the reason, delete them by SQL once fixed)."""
    wanted: IntakeState = "rejected" if rejected else "pending"
    with open_ledger(settings(ctx)) as ledger:
        rows = ledger.intake_rows(wanted, limit=limit)
        counts = ledger.intake_counts()
    table = Table(title=f"recording_intake: {wanted}")
    for col in ("id", "recording_uuid", "call_uuid", "recorded_at", "producer", "received_at"):
        table.add_column(col, overflow="fold")
    if rejected:
        table.add_column("reason", overflow="fold")
    for row in rows:
        # Everything a producer wrote is escaped (tenios_io.untrusted): its ANSI codes
        # and Rich markup print as text.
        cells = [
            str(row.id),
            shown(row.recording_uuid, 80),
            shown(row.call_uuid, 80),
            shown(row.recorded_at, 40),
            shown(row.producer, 80),
            f"{row.received_at:%Y-%m-%d %H:%M:%S}",
        ]
        table.add_row(*cells, *([shown(row.reason)] if rejected else []))
    console.print(table)
    console.print(f"pending: {counts['pending']:,}  rejected: {counts['rejected']:,}")


@app.command()
def show(
    ctx: typer.Context,
    recording_uuid: Annotated[str, typer.Argument(metavar="UUID")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object: the row, its events, the log.")
    ] = False,
) -> None:
    """Show one recording's row and its custody events, one field per line (fits 80
    columns: nothing the reader needs is cut or squeezed into narrow columns)."""
    from tenios_io.audit.export import event_record, export_row
    from tenios_io.publish.log import latest_log_checkpoint
    from tenios_io.recording.validation import describe_duration

    key = _uuid_arg(recording_uuid)
    with open_ledger(settings(ctx)) as ledger:
        rec = ledger.get(key)
        events = ledger.events(key)
        logged = latest_log_checkpoint(ledger)
    size = logged.size if logged else 0
    row = {name: value for name, value in export_row(rec).items()}
    if rec.duration_seconds is not None:
        row["duration"] = describe_duration(rec.duration_seconds, rec.channels)
    leaves = [e["seq"] - 1 for e in events if e["seq"] <= size]
    if as_json:
        document = {
            "recording": row,
            "events": [
                {**event_record(e), "leaf": e["seq"] - 1 if e["seq"] <= size else None}
                for e in events
            ],
            "custody_log": None
            if logged is None
            else {"checkpoint": logged.key, "size": logged.size, "signed": logged.signed},
        }
        # json.dumps escapes what a producer supplied: no terminal sequence gets through.
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        return
    console.print(f"[bold]recording {key}[/]")
    width = max(len(name) for name in row)
    for name, value in row.items():
        # source_path, last_error … may hold what a producer or a drop file name supplied.
        text = "" if value is None else shown(str(value))
        console.print(f"  {name:<{width}}  {text}", soft_wrap=True, highlight=False)
    console.print(f"\n[bold]custody events ({len(events)})[/]")
    for e in events:
        leaf = f"leaf {e['seq'] - 1}" if e["seq"] <= size else "not logged yet"
        console.print(f"  #{e['seq']} {e['event']}  {e['occurred_at']}  {leaf}", soft_wrap=True)
        console.print(f"      by {shown(e['actor'])}", soft_wrap=True)
        if e["details"] not in (None, "", "{}"):
            console.print(f"      {shown(e['details'])}", soft_wrap=True)
        console.print(f"      hash {e['hash']}", soft_wrap=True)
    where = logged.described if logged else "no checkpoint written yet"
    console.print(
        f"custody log: {where}; this recording's leaves: "
        f"{', '.join(map(str, leaves)) or 'none'}; "
        f"{len(events) - len(leaves)} event(s) not logged yet",
        soft_wrap=True,
    )


@app.command()
def export(
    ctx: typer.Context,
    format: Annotated[ExportFormat, typer.Option("--format", help="csv or jsonl.")] = (
        ExportFormat.csv
    ),
    output: Annotated[
        Path | None,
        typer.Option(help="Write here (atomically) instead of standard output.", dir_okay=False),
    ] = None,
    state: Annotated[State | None, typer.Option(help="Only recordings in this state.")] = None,
) -> None:
    """Export every recording's row (for spreadsheets, audits, other tools)."""
    from tenios_io.audit.export import EXPORT_COLUMNS, export_row

    with open_ledger(settings(ctx)) as ledger, output_file(output) as out:
        rows = (export_row(rec) for rec in ledger.iter_recordings(state=state))
        if format is ExportFormat.csv:
            writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


class RequeueState(StrEnum):
    """The states requeue accepts (the only ones --state offers)."""

    failed = "failed"
    missing = "missing"
    conflict = "conflict"


@app.command()
def requeue(
    ctx: typer.Context,
    recording_uuids: Annotated[
        list[str] | None, typer.Argument(metavar="[UUID...]", help="Recordings to requeue.")
    ] = None,
    state: Annotated[
        RequeueState | None,
        typer.Option(help="Requeue every recording in this state."),
    ] = None,
) -> None:
    """Put failed, missing or conflict recordings back to pending (attempts reset)."""
    if bool(recording_uuids) == (state is not None):
        raise typer.BadParameter("give either UUIDs or --state, not both and not neither")
    ids = [_uuid_arg(u) for u in recording_uuids or []]
    with open_ledger(settings(ctx), actor=cli_actor("ledger-requeue")) as ledger:
        done = ledger.requeue(ids, state=State(state.value) if state is not None else None)
    console.print(f"requeued {len(done):,} recording(s)")


HoldUuids = Annotated[
    list[str], typer.Argument(help="One or more recording_uuids.", metavar="UUID...")
]
HoldReason = Annotated[
    str,
    typer.Option(help="Why (e.g. the matter or ticket); recorded in the custody chain."),
]


@app.command()
def hold(ctx: typer.Context, recording_uuids: HoldUuids, reason: HoldReason) -> None:
    """Place a legal hold: S3 legal hold on the archived version (and on an earlier
    version's sidecar), the ledger's legal_hold flag, and a custody event with the reason.

    A recording not archived yet is held in the ledger and archived with the hold.
    A held recording is never purged.  Exit 1 if any recording could not be held.
    """
    _set_holds(ctx, recording_uuids, reason, on=True)


@app.command("release-hold")
def release_hold(ctx: typer.Context, recording_uuids: HoldUuids, reason: HoldReason) -> None:
    """Release a legal hold (S3 and ledger), recording the reason in the custody chain."""
    _set_holds(ctx, recording_uuids, reason, on=False)


def _set_holds(ctx: typer.Context, recording_uuids: list[str], reason: str, *, on: bool) -> None:
    from tenios_io.audit import open_audit, set_legal_hold  # boto3: only for holds

    if not reason.strip():
        raise typer.BadParameter("--reason may not be empty")
    ids = [_uuid_arg(u) for u in recording_uuids]
    failed = 0
    command = "ledger-hold" if on else "ledger-release-hold"
    with open_audit(settings(ctx), actor=cli_actor(command)) as audit:
        store = audit.require_store()
        for key in ids:
            try:
                result = set_legal_hold(audit.ledger, store, key, on=on, reason=reason)
            except UnknownRecording as exc:
                console.print(f"[red]failed[/]  {key}: {exc}", soft_wrap=True)
                failed += 1
                continue
            if result.ok:
                console.print(f"ok      {key}: {result.message}", soft_wrap=True)
            else:
                console.print(f"[red]failed[/]  {key}: {result.message}", soft_wrap=True)
                failed += 1
    if failed:
        raise typer.Exit(1)


@contextmanager
def _progress() -> Iterator[Progress]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} ids"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield progress


__all__ = ["app"]
