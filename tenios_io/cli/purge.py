"""`tenios-archive purge`: delete recordings whose retention has ended, with evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tenios_io.cli._common import cli_actor, console, err_console, settings

if TYPE_CHECKING:  # imported where used: `--help` loads nothing heavy (issue 27)
    from tenios_io.audit import PurgeResult


def register(app: typer.Typer) -> None:
    """Add the `purge` command to the root app."""
    app.command()(purge)


def purge(
    ctx: typer.Context,
    expired: Annotated[
        bool,
        typer.Option(
            "--expired", help="Purge archived recordings whose retention has ended (required)."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be deleted.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete. Without it nothing is deleted.")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Why, recorded in each purge's custody event.  [default: retention period ended]"
        ),
    ] = None,
) -> None:
    """Delete the object version (and an earlier version's sidecar) of every archived
    recording whose retention has ended and that is not on legal hold, recording the
    evidence in the custody chain.

    Nothing is deleted without --yes: without it (or with --dry-run) the command shows
    what would be deleted and exits 0.  Refusals (legal hold; S3 still retaining the
    object) are recorded with their reason.  Exit 1 when the bucket and the ledger
    disagree about a candidate (e.g. S3 refuses the deletion) or S3 could not be reached.
    """
    from tenios_io.audit import PurgeAction, open_audit, purge_expired
    from tenios_io.audit.retention import DEFAULT_PURGE_REASON

    reason = DEFAULT_PURGE_REASON if reason is None else reason
    if not expired:
        raise typer.BadParameter("say what to purge: --expired (retention ended)")
    if dry_run and yes:
        raise typer.BadParameter("--dry-run and --yes contradict each other; choose one")
    if not reason.strip():
        raise typer.BadParameter("--reason may not be empty")
    execute = yes
    with open_audit(settings(ctx), actor=cli_actor("purge")) as audit:
        report = purge_expired(audit.ledger, audit.require_store(), execute=execute, reason=reason)
    if not report.results:
        console.print(
            "nothing to purge: no archived recording has passed its retention date", soft_wrap=True
        )
        return
    console.print(_table(report.results, executed=execute))
    purged = report.of(PurgeAction.PURGED)
    would = report.of(PurgeAction.WOULD_PURGE)
    refused = report.of(PurgeAction.REFUSED)
    failed = report.of(PurgeAction.FAILED)
    if execute:
        console.print(
            f"purged {len(purged):,} recording(s) ({_size(purged)}); {len(refused):,} refused, "
            f"{len(failed):,} not tried (S3 unavailable) — evidence is in the custody chain",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[bold]dry run — nothing was deleted.[/] {len(would):,} recording(s) "
            f"({_size(would)}) would be purged, {len(refused):,} refused. "
            "Re-run with --yes to delete them.",
            soft_wrap=True,
        )
    for result in report.problems:
        err_console.print(
            f"[bold red]{result.action.value}[/] {result.recording_uuid}: {result.reason}",
            soft_wrap=True,
        )
    if report.problems:
        raise typer.Exit(1)


def _table(results: list[PurgeResult], *, executed: bool) -> Table:
    from tenios_io.audit import PurgeAction

    table = Table(title="purge" if executed else "purge (dry run)")
    for column in ("recording_uuid", "outcome", "s3_key", "version", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column in ("recording_uuid", "outcome"))
    style = {PurgeAction.REFUSED: "yellow", PurgeAction.FAILED: "red"}
    for r in results:
        table.add_row(
            r.recording_uuid,
            r.action.value.replace("_", " "),
            r.s3_key or "",
            r.version_id or "",
            r.reason,
            style=style.get(r.action),
        )
    return table


def _size(results: list[PurgeResult]) -> str:
    total = sum(r.size or 0 for r in results)
    return f"{total / 1024 / 1024:,.1f} MiB" if total >= 1024 * 1024 else f"{total:,} bytes"
