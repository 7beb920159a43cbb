"""`tenios-archive audit ...`: prove the archive and the ledger are what they claim.

Exit codes: 0 nothing found; 1 a check found problems (each named) or failed;
2 usage or configuration error (e.g. TENIOS_S3_BUCKET missing where S3 is needed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tenios_io.cli._common import (
    cli_actor,
    console,
    err_console,
    output_file,
    settings,
    shown,
)

if TYPE_CHECKING:  # imported where used: `--help` loads nothing heavy (issue 27)
    from tenios_io.audit import VerifyResult
    from tenios_io.audit.verify import SelectionMode
    from tenios_io.ledger import Recording

app = typer.Typer(
    help="Audit: verify the archive and the custody chain, reconcile, retention, reports.",
    no_args_is_help=True,
)

Day = Annotated[
    str | None,
    typer.Option(metavar="YYYY-MM-DD", help="A UTC day."),
]
Integrate = Annotated[
    bool,
    typer.Option(
        "--integrate/--no-integrate",
        help="Integrate the queued custody events into the chain first (the default), or "
        "cover only what is integrated and write nothing (read-only database credentials).",
    ),
]


def parse_day(value: str | None, option: str) -> date | None:
    """``YYYY-MM-DD`` → date; a usage error (exit 2) naming the option otherwise."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2026-03-01", param_hint=option
        ) from None


# -- verify ----------------------------------------------------------------------------------


@app.command()
def verify(
    ctx: typer.Context,
    all_: Annotated[
        bool, typer.Option("--all", help="Every archived recording (the default).")
    ] = False,
    sample: Annotated[
        float | None,
        typer.Option(
            metavar="PERCENT", min=0.001, max=100, help="A random PERCENT of the recordings."
        ),
    ] = None,
    rolling: Annotated[
        bool,
        typer.Option(
            help="The nightly slice: ceil(archived / cycle days) recordings, least recently "
            "verified first, so the whole archive is re-verified every cycle."
        ),
    ] = False,
    cycle_days: Annotated[
        int | None,
        typer.Option(min=1, help="With --rolling: the cycle (default TENIOS_VERIFY_CYCLE_DAYS)."),
    ] = None,
    since: Day = None,
    deep: Annotated[
        bool,
        typer.Option(help="Also download every object and re-hash its bytes (slow, costs GETs)."),
    ] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Recordings checked at once.")] = 4,
) -> None:
    """Check archived recordings against the bucket and record each verdict.

    HEADs the archived object version and compares size, SHA-256, retention mode and
    retain-until, and legal hold with the ledger; checks the object's custody metadata
    (or, for objects of earlier versions, their .json sidecar); with --deep re-hashes
    the bytes.  Each result is a custody event (verified / discrepancy).
    Exit 1 on any discrepancy (named), or if a recording could not be checked.
    """
    from tenios_io.audit import open_audit, select_recordings, verify_archive

    if sum((all_, sample is not None, rolling)) > 1:
        raise typer.BadParameter("choose one of --all, --sample, --rolling")
    if cycle_days is not None and not rolling:
        raise typer.BadParameter("--cycle-days only goes with --rolling")
    since_day = parse_day(since, "--since")
    cfg = settings(ctx)
    mode: SelectionMode = "rolling" if rolling else "sample" if sample is not None else "all"
    with open_audit(cfg, actor=cli_actor("audit-verify")) as audit:
        store = audit.require_store()
        selection = select_recordings(
            audit.ledger,
            mode,
            percent=sample,
            cycle_days=cycle_days or cfg.verify_cycle_days,
            since=datetime.combine(since_day, time(0), tzinfo=UTC) if since_day else None,
        )
        with _progress() as progress:
            task = progress.add_task("verifying", total=selection.count)

            def advance(_result: VerifyResult) -> None:
                progress.advance(task)

            report = verify_archive(
                audit.ledger,
                store,
                selection.recordings,
                deep=deep,
                workers=workers,
                on_result=advance,
            )
    how = "deep: bytes re-hashed" if deep else "HEAD and custody metadata"
    console.print(
        f"checked {report.checked:,} of {selection.archived:,} archived recording(s) "
        f"({selection.mode}, {how}): {report.verified:,} verified, "
        f"{len(report.discrepancies):,} discrepancies, {len(report.errors):,} not checked",
        soft_wrap=True,
    )
    if report.discrepancies:
        table = Table(title="discrepancies (recorded in the custody chain)")
        for column in ("recording_uuid", "field", "expected (ledger)", "found (bucket)"):
            table.add_column(column, overflow="fold", no_wrap=column in ("recording_uuid", "field"))
        for result in report.discrepancies:
            for diff in result.differences:
                table.add_row(
                    result.recording_uuid, diff.field, str(diff.expected), str(diff.found)
                )
        console.print(table)
    for result in report.errors:
        err_console.print(
            f"[yellow]not checked[/] {result.recording_uuid}: {result.error}", soft_wrap=True
        )
    if not report.ok:
        named = ", ".join(r.recording_uuid for r in [*report.discrepancies, *report.errors])
        err_console.print(f"[bold red]verify found problems:[/] {named}", soft_wrap=True)
        raise typer.Exit(1)


# -- the custody chain -----------------------------------------------------------------------


@app.command("verify-chain")
def verify_chain(ctx: typer.Context, integrate: Integrate = True) -> None:
    """Recompute the custody hash chain end to end and check it against every checkpoint.

    Exit 1 naming the first broken event, or each checkpoint the ledger contradicts
    (events deleted, the table truncated, history re-hashed).  Without a bucket
    configured only the chain is checked (and a note says so).
    """
    from tenios_io.audit import check_checkpoints, checkpoint_prefix, open_audit
    from tenios_io.publish.log import latest_log_checkpoint, unsigned_log_problem

    with open_audit(settings(ctx), need_store=False) as audit:
        report = audit.ledger.verify_chain(integrate=integrate)
        checkpoints = (
            check_checkpoints(audit.ledger, audit.store) if audit.store is not None else None
        )
        where = (
            f"s3://{audit.store.bucket}/{checkpoint_prefix(audit.store.prefix)}"
            if audit.store is not None
            else ""
        )
        logged = latest_log_checkpoint(audit.ledger)
    failed = False
    if report.ok:
        console.print(
            f"custody chain OK: {report.events:,} events, "
            f"head {report.head_seq} {report.head_hash}",
            soft_wrap=True,
        )
    else:
        failed = True
        err_console.print(
            f"[bold red]custody chain BROKEN[/] at event {report.first_broken_seq}: "
            f"{report.problem} ({report.events:,} events verified before it)",
            soft_wrap=True,
        )
    if report.queued:
        console.print(f"{_still_queued(report.queued)}: not covered by this check", soft_wrap=True)
    if checkpoints is None:
        err_console.print(
            "[yellow]checkpoints not checked:[/] TENIOS_S3_BUCKET is not set; set it to check "
            "the chain against the bucket's checkpoints",
            soft_wrap=True,
        )
    elif checkpoints.ok:
        newest = checkpoints.newest
        latest = (
            f"; newest pins event {newest.last_seq} "
            f"(written {newest.written_at:%Y-%m-%d %H:%M} UTC)"
            if newest
            else "; none written yet (`tenios-archive audit checkpoint`)"
        )
        console.print(
            f"checkpoints OK: {checkpoints.checked} in {where} agree with the ledger{latest}",
            soft_wrap=True,
        )
    else:
        failed = True
        for problem in checkpoints.problems:
            err_console.print(f"[bold red]checkpoint problem:[/] {problem.message}", soft_wrap=True)
    if logged is not None and not logged.signed:
        # What `audit verify-bucket` and the report say too: an unsigned log is not verified.
        failed = True
        err_console.print(
            f"[bold red]custody log UNSIGNED:[/] {unsigned_log_problem(logged)}", soft_wrap=True
        )
    if failed:
        raise typer.Exit(1)
    if checkpoints is None:
        raise typer.Exit(2)  # not everything was checked: never the exit code of "all good"


@app.command("export-events")
def export_events(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(help="Write here (atomically) instead of standard output.", dir_okay=False),
    ] = None,
    integrate: Integrate = True,
) -> None:
    """Export every custody event as JSON lines, exactly as stored, in chain order.

    With this file alone the hash chain can be recomputed independently of this tool
    (see the README's section for compliance teams).  Events still queued (written,
    not yet integrated) have no place in the chain yet: they are counted, not exported.
    """
    from tenios_io.audit import open_audit
    from tenios_io.audit.export import event_record

    with open_audit(settings(ctx), need_store=False) as audit, output_file(output) as out:
        if integrate:
            audit.ledger.integrate_all()
        for row in audit.ledger.iter_events():
            out.write(json.dumps(event_record(row), ensure_ascii=False) + "\n")
        queued = audit.ledger.queued_events()
    if queued:
        # Standard error: standard output may be the export itself.
        err_console.print(f"{_still_queued(queued)}: not in the export", soft_wrap=True)


def _still_queued(count: int) -> str:
    return f"{count:,} custody event(s) still queued (written, not yet integrated)"


@app.command()
def checkpoint(ctx: typer.Context) -> None:
    """Write the custody chain's head into the bucket (never overwritten, Object Lock).

    The chain since the previous checkpoint is verified first; exit 1 if it does not
    verify (nothing is written then).
    """
    from tenios_io.audit import open_audit, write_checkpoint
    from tenios_io.publish.identity import bind_bucket
    from tenios_io.publish.log import KEYGEN_COMMAND, custody_signer
    from tenios_io.publish.witnessing import load_witnesses, witness_session

    cfg = settings(ctx)
    signer = custody_signer(cfg.custody_key_file, unsigned=cfg.custody_unsigned)  # exit 2 first
    witnesses = load_witnesses(cfg.custody_witnesses, cfg.custody_witness_quorum)
    with (
        open_audit(cfg, actor=cli_actor("audit-checkpoint")) as audit,
        witness_session(witnesses) as session,
    ):
        store = audit.require_store()
        bind_bucket(audit.ledger, store)  # a bucket from before ledger ids gets this one's
        written = write_checkpoint(audit.ledger, store, signer=signer, witnesses=session)
        bucket = store.bucket
    state = "already there" if written.already_written else "written"
    console.print(
        f"checkpoint {state}: s3://{bucket}/{written.key} — event {written.last_seq}, "
        f"hash {written.last_hash}, {written.event_count:,} events",
        soft_wrap=True,
    )
    if signer is None:
        err_console.print(
            "[yellow]warning:[/] the custody log's checkpoint was written UNSIGNED "
            "(TENIOS_CUSTODY_UNSIGNED=true): auditors cannot verify it. To sign from now "
            "on, run this and set TENIOS_CUSTODY_KEY_FILE to the file:",
            soft_wrap=True,
        )
        err_console.print(KEYGEN_COMMAND, soft_wrap=True, markup=False)
    if written.lock_mode:
        console.print(
            f"Object Lock {written.lock_mode} until {written.retain_until:%Y-%m-%d}", soft_wrap=True
        )
    else:
        err_console.print(
            "[yellow]warning:[/] the checkpoint is not under Object Lock (the bucket has none, "
            "or TENIOS_RETENTION_MODE=none): anyone allowed to delete objects could remove it",
            soft_wrap=True,
        )
    if written.witness is not None:
        console.print(f"custody witnesses: {shown(written.witness.summary())}", soft_wrap=True)
        forked = written.witness.fork_message()
        if forked:
            err_console.print(f"[bold red]{shown(forked)}[/]", soft_wrap=True)
            raise typer.Exit(1)


# -- reconcile -------------------------------------------------------------------------------


@app.command("reconcile")
def reconcile_(
    ctx: typer.Context,
    sftp: Annotated[
        bool, typer.Option(help="Include the SFTP drop when TENIOS_SFTP_URL is set.")
    ] = True,
    show: Annotated[int, typer.Option(min=0, help="List at most this many per category.")] = 20,
) -> None:
    """Compare the ledger, the bucket listing and the SFTP drop; list what does not line up.

    Categories: objects not in the ledger, objects the ledger does not have as
    archived, archived rows without object, unrecognised keys, drop files never
    registered (.json sidecars of earlier versions are recognised, never required).
    Exit 1 when any is non-empty.
    """
    from tenios_io.audit import Category, drop_entries, open_audit, reconcile

    cfg = settings(ctx)
    with open_audit(cfg) as audit:
        drop = drop_entries(cfg, audit.ledger) if sftp else None
        with _progress(counting=True) as progress:
            task = progress.add_task("listing", total=None)

            def tick(phase: str, n: int) -> None:
                progress.update(task, description=phase, advance=n)

            report = reconcile(
                audit.ledger, audit.require_store(), drop[0] if drop else None, on_progress=tick
            )
    table = Table(title="reconciliation: ledger / bucket" + (" / SFTP drop" if drop else ""))
    table.add_column("category")
    table.add_column("count", justify="right")
    for category, count in report.counts().items():
        if category is Category.DROP_FILES_NOT_REGISTERED and drop is None:
            continue
        table.add_row(category.value, f"{count:,}", style="red" if count else None)
    console.print(table)
    compared = f"{report.listed_keys:,} keys listed, {report.archived_rows:,} archived rows"
    if drop is not None:
        compared += f", {report.drop_files or 0:,} drop files ({drop[1]:,} still being written)"
    elif cfg.sftp_url is None:
        compared += "; no SFTP drop configured"
    if report.in_flight:
        compared += f"; {report.in_flight:,} in flight"
    if report.other_buckets:
        compared += f"; {report.other_buckets:,} archived rows of other buckets not compared"
    console.print(compared, soft_wrap=True)
    for category, findings in report.findings.items():
        for finding in findings[:show]:
            who = f" ({finding.recording_uuid})" if finding.recording_uuid else ""
            console.print(
                f"  {category.value}: {shown(finding.location)}{who} — {shown(finding.detail)}",
                soft_wrap=True,
            )
        if len(findings) > show:
            console.print(
                f"  {category.value}: … and {len(findings) - show:,} more", soft_wrap=True
            )
    if not report.ok:
        raise typer.Exit(1)


# -- retention -------------------------------------------------------------------------------


@app.command()
def retention(
    ctx: typer.Context,
    due_within: Annotated[
        int, typer.Option(min=0, metavar="DAYS", help="Also list retention ending this soon.")
    ] = 30,
) -> None:
    """Archived recordings whose retention has ended (purge candidates) or ends soon."""
    from tenios_io.audit import open_audit, retention_overview

    with open_audit(settings(ctx), need_store=False) as audit:
        overview = retention_overview(audit.ledger, within_days=due_within)
    console.print(
        _retention_table(f"retention ended ({len(overview.expired):,})", overview.expired)
    )
    console.print(
        _retention_table(
            f"retention ends within {due_within} days ({len(overview.due):,})", overview.due
        )
    )
    held = sum(1 for r in overview.expired if r.legal_hold)
    console.print(
        f"{len(overview.expired):,} past retention ({held:,} on legal hold), "
        f"{len(overview.due):,} ending within {due_within} days; "
        "`tenios-archive purge --expired --dry-run` shows what a purge would delete",
        soft_wrap=True,
    )


def _retention_table(title: str, rows: list[Recording]) -> Table:
    table = Table(title=title)
    for column in ("recording_uuid", "retain_until", "mode", "legal hold", "s3_key"):
        table.add_column(column, overflow="fold", no_wrap=column in ("recording_uuid", "field"))
    for rec in rows:
        table.add_row(
            rec.recording_uuid,
            f"{rec.retain_until:%Y-%m-%d %H:%M}" if rec.retain_until else "",
            rec.retention_mode or "none",
            "yes" if rec.legal_hold else "",
            rec.s3_key or "",
        )
    return table


# -- report ----------------------------------------------------------------------------------


@app.command()
def report(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            help="Directory for report.html, recordings.csv / .jsonl, summary.json.",
            file_okay=False,
        ),
    ],
    from_: Annotated[
        str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="First UTC day.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="Last UTC day (inclusive).")
    ] = None,
    due_within: Annotated[
        int, typer.Option(min=0, metavar="DAYS", help="Retention ending this soon is listed.")
    ] = 30,
    integrate: Integrate = True,
) -> None:
    """Write the compliance report: a self-contained HTML page plus CSV / JSONL / JSON.

    Covers recordings registered or archived in the period.  The chain is verified
    and, with a bucket configured, every checkpoint checked.
    """
    from tenios_io.audit import Period, build_report, open_audit

    try:
        period = Period(parse_day(from_, "--from"), parse_day(to, "--to"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    cfg = settings(ctx)
    with open_audit(cfg, need_store=False) as audit:
        result = build_report(
            audit.ledger,
            output,
            period=period,
            store=audit.store,
            due_within_days=due_within,
            cycle_days=cfg.verify_cycle_days,
            integrate=integrate,
        )
    console.print(f"report for {period}: {result.recordings:,} recording(s)", soft_wrap=True)
    for kind, path in result.files.items():
        console.print(f"  {kind:8} {path}", soft_wrap=True)
    for finding in result.findings:
        err_console.print(f"[yellow]finding:[/] {finding}", soft_wrap=True)
    verdict = "all checks passed" if result.all_passed else "checked"
    console.print(f"{verdict}: {result.verdict}", soft_wrap=True)
    # The same verdict as the report's banner: 1 when something needs attention, 2 when
    # the bucket was not checked (TENIOS_S3_BUCKET unset), 0 otherwise.
    if result.findings:
        raise typer.Exit(1)
    if result.checkpoints is None:
        err_console.print(
            "[yellow]bucket not checked:[/] TENIOS_S3_BUCKET is not set", soft_wrap=True
        )
        raise typer.Exit(2)


@contextmanager
def _progress(*, counting: bool = False) -> Iterator[Progress]:
    columns = (
        [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,}"),
            TimeElapsedColumn(),
        ]
        if counting
        else [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
    )
    progress = Progress(*columns, console=err_console, transient=True)
    with progress:
        yield progress
