"""TODO docstring."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape

from tenios_io.cli._common import console, err_console, settings, state
from tenios_io.cli._importing import import_line
from tenios_io.cli._prefect import (
    call_flow,
    load_flow,
    prefect_api_url,
    prepare_logging,
    prepare_prefect,
)
from tenios_io.cli._runview import (
    RunProgress,
    claimed_elsewhere_table,
    duplicate_content_table,
    problems_table,
    summary_table,
)
from tenios_io.config import Settings
from tenios_io.ledger import ImportResult, NewRecording, open_ledger
from tenios_io.ledger.importing import iter_import_file
from tenios_io.progress import ProgressListener
from tenios_io.recording.spool import remove_own_spools
from tenios_io.run.interrupt import Interruption, RunInterrupted
from tenios_io.run.options import RunOptions
from tenios_io.run.pipeline import Pipeline, open_pipeline
from tenios_io.run.progress_poll import LedgerProgress, polling
from tenios_io.run.session import in_process_actor, rate_limiter, run_in_process


@dataclass
class Preflight:
    """What the CLI's preflight found: recordings due now (for the progress bar) and,
    for a backfill, what the import registered."""

    due: int
    imported: ImportResult | None = None


def preflight(
    pipeline: Pipeline,
    register: Path | Sequence[NewRecording] | None = None,
    interruption: Interruption | None = None,
) -> Preflight:
    """Bucket reachable, drop and signing key usable (the database and the access key
    were checked when the pipeline was opened) — before any work, once per run.

    Imports the file ``register`` (a backfill's ids, streamed: the flow's own import
    then finds them known), drains the producers' intake, and returns how many
    recordings are due now, for the progress bar.
    Errors are ConfigError / SchemaNotCurrent: exit 2 with the reason.  A first
    signal during the import ends it after the chunk being merged (``interruption``);
    the run then stops before claiming anything.
    """
    imported = None
    status = pipeline.preflight()
    for warning in status.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    if register is not None:
        items = iter_import_file(register) if isinstance(register, Path) else register
        imported = pipeline.ledger.import_recordings(
            items,
            actor="cli:run-backfill",
            stop=interruption.stop if interruption is not None else None,
        )
        console.print(import_line(imported, interruption))
    drained = pipeline.ledger.drain_intake(actor="cli:preflight")
    if drained.taken:
        console.print(
            f"intake: {drained.registered:,} new, {drained.known:,} already known, "
            f"{drained.rejected:,} rejected"
            + (" (`tenios-archive ledger intake --rejected`)" if drained.rejected else "")
        )
    return Preflight(pipeline.ledger.count_due(), imported)


def due_total(checked: Preflight, options: RunOptions) -> int:
    """What the progress bar is told is due: the due recordings, at most the limit."""
    return min(checked.due, options.limit) if options.limit else checked.due


def show_run(
    title: str,
    total: int | None,
    call: Callable[[ProgressListener], dict[str, Any]],
    *,
    fetches_bytes: bool = True,
) -> dict[str, Any]:
    """Run ``call`` under the progress bar and print its summary; returns its result
    (the summary as a dict).  ``fetches_bytes`` is False for a Prefect flow: its tasks
    take plain data and report no events, so the listener is fed from the ledger
    (tenios_io.run.progress_poll), which knows outcomes, not bytes."""
    view = RunProgress(console, total, fetched=fetches_bytes)
    with view.shown():
        result = call(view)
    console.print(summary_table(result, title))
    for extra in (
        claimed_elsewhere_table(result),
        problems_table(result),
        duplicate_content_table(result),
    ):
        if extra is not None:
            console.print(extra)
    for note in result.get("notes") or ():
        console.print(escape(note), soft_wrap=True)
    if result.get("stopped"):
        err_console.print(f"[red]{escape(result['stopped']['message'])}[/red]")
    forked = (result.get("checkpoint") or {}).get("log_forked")
    if forked:
        err_console.print(f"[bold red]{escape(forked)}[/]", soft_wrap=True)
    return result


def run_here(
    cfg: Settings,
    *,
    verbose: bool,
    title: str,
    flow: str,
    options: RunOptions,
    before: Callable[[Preflight], Callable[[Pipeline, str], dict[str, Any]]],
    register: Path | None,
    interruption: Interruption | None,
) -> dict[str, Any]:
    """The run in this process (no Prefect imported): one pipeline, preflighted once,
    then :func:`~tenios_io.run.session.run_in_process` on it, stopped by
    ``interruption``'s signals."""
    actor = in_process_actor(flow)
    with open_pipeline(
        cfg,
        actor=actor,
        concurrency=options.concurrency,
        in_flight=options.recordings,
        batches=options.batches,
        before_request=rate_limiter(cfg, options),
    ) as pipeline:
        checked = preflight(pipeline, register=register, interruption=interruption)
        prepare_logging(verbose)

        def in_process(progress: ProgressListener) -> dict[str, Any]:
            pipeline.report_to(progress)
            return run_in_process(
                pipeline,
                options,
                actor=actor,
                before=before(checked),
                interruption=interruption,
            ).to_dict()

        return show_run(title, due_total(checked, options), in_process)


def run_through_prefect(
    cfg: Settings,
    *,
    verbose: bool,
    title: str,
    flow: str,
    options: RunOptions,
    flow_args: dict[str, Any],
    register: Path | None,
) -> dict[str, Any]:
    """The Prefect flow ``flow`` with ``flow_args``, after this process's preflight
    (the flow may run anywhere: its own process preflights what it opens); its
    progress is read from the ledger."""
    with open_pipeline(cfg, actor="cli:preflight", concurrency=options.concurrency) as pipeline:
        checked = preflight(pipeline, register=register)
    total = due_total(checked, options)
    prepare_prefect(verbose)
    archive_flow = load_flow(flow)
    from tenios_io.ops.prefect_setup import require_rate_limit

    # The server's limit is the operator's (`prefect apply`): missing is exit 2 here.
    rate = options.rate_limit
    require_rate_limit(rate if rate is not None else cfg.api_rate_limit)

    def through_prefect(progress: ProgressListener) -> dict[str, Any]:
        # The flow's tasks may run anywhere: the bar follows the ledger instead.
        with open_ledger(cfg, check_schema=False) as ledger:
            with polling(LedgerProgress(ledger, progress, total=total)):
                return call_flow(archive_flow, flow_args)

    return show_run(title, total, through_prefect, fetches_bytes=False)


def run_once(
    cfg: Settings,
    *,
    verbose: bool,
    title: str,
    flow: str,
    options: RunOptions,
    flow_args: dict[str, Any],
    before: Callable[[Preflight], Callable[[Pipeline, str], dict[str, Any]]],
    register: Path | None = None,
    interruption: Interruption | None = None,
) -> dict[str, Any]:
    """One run, preflight included, under the progress bar: through the Prefect flow
    ``flow`` (with ``flow_args``) when a Prefect API is configured, else in this
    process with ``options`` (``before`` makes its first step from the preflight)."""
    if prefect_api_url() is not None:
        return run_through_prefect(
            cfg,
            verbose=verbose,
            title=title,
            flow=flow,
            options=options,
            flow_args=flow_args,
            register=register,
        )
    return run_here(
        cfg,
        verbose=verbose,
        title=title,
        flow=flow,
        options=options,
        before=before,
        register=register,
        interruption=interruption,
    )


def run_archival(
    ctx: typer.Context,
    *,
    title: str,
    flow: str,
    options: RunOptions,
    flow_args: dict[str, Any],
    before: Callable[[Preflight], Callable[[Pipeline, str], dict[str, Any]]],
    register: Path | None = None,
) -> NoReturn:
    """Preflight, run (through Prefect or in this process), print the summary, exit.

    In this process SIGINT and SIGTERM are the run's (run/interrupt.py): the first stops
    claiming and lets the recordings in flight finish (within a grace), the second
    gives their claims back at once; either way the summary is printed and the exit
    code is 130 (SIGINT) or 143 (SIGTERM).  This process's spool files are removed on
    every way out."""
    cli = state(ctx)
    cfg = settings(ctx)
    options = options.with_in_flight(
        cfg.in_flight, setting_given="in_flight" in cfg.model_fields_set
    )
    interruption = None
    if prefect_api_url() is None:
        interruption = Interruption(
            notify=lambda line: err_console.print(f"[yellow]{escape(line)}[/]", soft_wrap=True)
        )
    try:
        with interruption.installed() if interruption is not None else nullcontext():
            result = run_once(
                cfg,
                verbose=cli.verbose,
                title=title,
                flow=flow,
                options=options,
                flow_args=flow_args,
                before=before,
                register=register,
                interruption=interruption,
            )
    except RunInterrupted as exc:
        err_console.print(f"[red]{escape(str(exc))}: no claim was held; run it again[/]")
        raise typer.Exit(exc.exit_code) from None
    finally:
        remove_own_spools(cfg.spool_dir)
    code = int(result["exit_code"])
    if interruption is not None and interruption.signal is not None and code == 0:
        code = interruption.exit_code  # the signal came after the last batch
    if result.get("cut_short"):
        # The batches given back may still be working: end without waiting for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)
