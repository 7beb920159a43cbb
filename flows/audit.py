"""The weekly compliance audit (deployment `audit`, Sundays 05:00 Europe/Berlin).

Thin orchestration over :mod:`tenios_io.audit`: verify the custody chain and the
checkpoints, the rolling slice of archived recordings, reconcile ledger / bucket /
SFTP drop, optionally write the report files, pin a new checkpoint, and publish
the verdicts as artifacts (a table and a markdown page).  The run ends Failed
when any check found a problem, so the usual Prefect notifications fire.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed, State

from flows.archiving import RETRIED_TASK, run_actor
from tenios_io.audit import (
    AuditReport,
    AuditSummary,
    CheckpointReport,
    Period,
    ReconcileReport,
    Selection,
    VerifyReport,
    build_report,
    check_checkpoints,
    drop_entries,
    open_audit,
    reconcile,
    select_recordings,
    verify_archive,
    write_checkpoint,
)
from tenios_io.config import Settings, load_settings
from tenios_io.ledger import ChainReport, Ledger
from tenios_io.publish.log import load_signer
from tenios_io.publish.witnessing import load_witnesses, witness_session
from tenios_io.store import ArchiveStore


@task(name="audit-verify-chain", **RETRIED_TASK)
def verify_chain(ledger: Ledger, store: ArchiveStore) -> tuple[ChainReport, CheckpointReport]:
    """Recompute the custody chain and check it against every checkpoint in the bucket."""
    return ledger.verify_chain(), check_checkpoints(ledger, store)


@task(name="audit-verify-rolling", **RETRIED_TASK)
def verify_rolling(
    ledger: Ledger,
    store: ArchiveStore,
    cycle_days: int,
    every_days: int,
    deep: bool,
    workers: int,
) -> tuple[Selection, VerifyReport]:
    """Verify this run's slice of the archive (least recently verified first)."""
    selection = select_recordings(ledger, "rolling", cycle_days=cycle_days, every_days=every_days)
    chosen = list(selection.recordings)
    report = verify_archive(ledger, store, chosen, deep=deep, workers=workers)
    return Selection(selection.mode, selection.archived, selection.count, []), report


@task(name="audit-reconcile", **RETRIED_TASK)
def reconcile_all(
    ledger: Ledger, store: ArchiveStore, settings: Settings, include_drop: bool
) -> ReconcileReport:
    """Ledger vs bucket listing (vs the SFTP drop's settled files, when one is configured)."""
    drop = drop_entries(settings, ledger) if include_drop else None
    return reconcile(ledger, store, drop[0] if drop else None)


@task(name="audit-report", **RETRIED_TASK)
def write_report(
    ledger: Ledger, store: ArchiveStore, out_dir: str, days: int, cycle_days: int
) -> AuditReport:
    """The report files for the last ``days`` UTC days."""
    today = ledger.now().date()
    period = Period(today - timedelta(days=max(0, days - 1)), today)
    return build_report(ledger, Path(out_dir), period=period, store=store, cycle_days=cycle_days)


@flow(name="audit", log_prints=False, validate_parameters=True)
def audit(
    cycle_days: int | None = None,
    every_days: int = 7,
    deep: bool = False,
    workers: int = 4,
    include_drop: bool = True,
    report_dir: str | None = None,
    report_days: int = 7,
    checkpoint: bool = True,
    config_file: str | None = None,
) -> State[Any]:
    """Run the audit checks and publish their verdicts.

    ``cycle_days`` (default TENIOS_VERIFY_CYCLE_DAYS) and ``every_days`` (how often this
    runs: 7 for the weekly schedule) size the rolling verification so the whole
    archive is re-verified every cycle;
    ``report_dir`` also writes the report files for the last ``report_days`` days;
    ``checkpoint`` pins the chain head in the bucket at the end (when it verifies).
    """
    settings = load_settings(config_file)
    cycle = cycle_days or settings.verify_cycle_days
    actor = run_actor("audit")
    with open_audit(settings, actor=actor) as context:
        ledger, store = context.ledger, context.require_store()
        chain, checkpoints = verify_chain(ledger, store)
        selection, verified = verify_rolling(ledger, store, cycle, every_days, deep, workers)
        reconciled = reconcile_all(ledger, store, settings, include_drop)
        report = write_report(ledger, store, report_dir, report_days, cycle) if report_dir else None
        summary = AuditSummary(chain, checkpoints, selection, verified, reconciled, report)
        if checkpoint and chain.ok and checkpoints.ok:
            signer = load_signer(settings.custody_key_file)
            witnesses = load_witnesses(settings.custody_witnesses, settings.custody_witness_quorum)
            with witness_session(witnesses) as session:
                pinned = write_checkpoint(
                    ledger, store, actor=actor, signer=signer, witnesses=session
                )
            get_run_logger().info("checkpoint %s pins event %d", pinned.key, pinned.last_seq)
            if pinned.witness is not None:
                get_run_logger().info("custody witnesses: %s", pinned.witness.summary())
                forked = pinned.witness.fork_message()
                if forked:
                    get_run_logger().error("%s", forked)
    create_table_artifact(
        key="audit-summary", table=summary.table(), description="The audit's checks and verdicts."
    )
    create_markdown_artifact(
        key="audit-findings",
        markdown=summary.markdown(),
        description="Every problem the audit found: chain, checkpoints, discrepancies, "
        "reconciliation.",
    )
    result = summary.to_dict()
    if summary.ok:
        return Completed(message=f"audit: {summary.verdict}", data=result)
    problems = summary.problems()
    return Failed(
        message=f"audit found {len(problems)} problem(s): " + "; ".join(problems[:5]),
        data=result,
    )
