"""`tenios-archive demo` (= `make demo`): the whole job locally, on embedded defaults."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel

from tenios_io.cli._common import cli_actor, console

if TYPE_CHECKING:  # imported where used: `--help` loads nothing heavy (issue 27)
    from tenios_io.config import Settings


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root app."""
    app.command()(demo)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its ledger and settings.")
    ] = Path("demo"),
    recordings: Annotated[int, typer.Option(min=1, max=500, help="Recordings to archive.")] = 50,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Keep the simulator, SFTP and S3 servers up after the demo (Ctrl-C stops "
            "them), with the settings to poke at the archive printed.",
        ),
    ] = False,
) -> None:
    """Run the archive end to end on 127.0.0.1: TENIOS simulator (with injected
    faults), moto S3 with Object Lock, a SQLite ledger under ./demo — two nightly runs,
    the second proving nothing is uploaded twice."""
    from tenios_io.cli._running import run_once
    from tenios_io.config import load_settings
    from tenios_io.ledger.schema import upgrade
    from tenios_io.run.options import RunOptions
    from tenios_io.run.session import sweep_first
    from tenios_io.simulator.demo import PRODUCER_INSERT, demo_environment, hand_over_by_sql
    from tenios_io.store import make_s3_client, parse_object_key
    from tenios_io.store.keys import manifest_prefix

    with demo_environment(directory, recordings=recordings) as env:
        console.print(
            Panel.fit(
                f"TENIOS simulator  {env.api_url}  ({len(env.recordings)} recordings, "
                "some with injected 500/503/429, truncated bodies, resets, not-ready 404s)\n"
                f"SFTP drop         {env.sftp_url}  (host key checked)\n"
                f"S3 (moto)         {env.s3_endpoint}  bucket with Object Lock\n"
                f"ledger            {env.ledger_file}\n"
                f"settings          {env.config_file}",
                title="tenios-archive demo",
            )
        )
        cfg = load_settings(env.config_file)
        upgrade(cfg.database_url)
        console.print(
            f"The telephony application hands over the {len(env.api_recordings)} recordings "
            "known only through the API, with plain SQL into the ledger's intake:\n"
            f"  {PRODUCER_INSERT}\n"
            "The run drains the intake first; the SFTP sweep discovers the others on the drop.",
            soft_wrap=True,
        )
        hand_over_by_sql(env.ledger_file, env.api_recordings)
        nightly = partial(
            run_once,
            cfg,
            verbose=verbose,
            flow="nightly-archive",
            options=RunOptions(concurrency=8, batch_size=50),
            flow_args={
                "limit": None,
                "concurrency": 8,
                "batch_size": 50,
                "time_budget_minutes": None,
                "config_file": str(env.config_file),
            },
            before=lambda _checked: sweep_first,
        )
        first = nightly(title="first nightly run")
        console.print("\n[bold]Running the nightly run again[/] (a re-run must upload nothing):")
        second = nightly(title="second nightly run")
        console.print("\n[bold]Auditing[/] the archive against the ledger:")
        audit_line, report_file = _audit(cfg, env.root / "report")
        console.print(audit_line)
        s3 = make_s3_client()
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cfg.s3_bucket or "")
            for o in page.get("Contents", [])
        ]
        s3.close()
        if keep_running:
            _serve_until_interrupted(env.config_file, env.s3_endpoint)
    objects = [k for k in keys if parse_object_key(cfg.s3_prefix, k)]
    manifests = [k for k in keys if k.startswith(manifest_prefix(cfg.s3_prefix))]
    archived = first["counts"].get("archived", 0) + second["counts"].get("archived", 0)
    console.print(
        Panel.fit(
            f"S3 holds {len(objects)} recordings, one object each (custody facts in its "
            f"metadata), and {len(manifests)} custody manifest(s), one per archived batch; "
            f"{archived} uploads in two runs — nothing twice.\n"
            f"Audit report: {report_file}",
            title="demo finished",
        )
    )
    # The commands outside the box, each on one line (issue 27: wrapped inside the panel,
    # they broke when copied).
    console.print("Look next (the demo's servers have stopped; these read only the ledger):")
    for command in (
        f"tenios-archive --config {env.config_file} ledger list",
        f"tenios-archive --config {env.config_file} ledger show {env.recordings[0][0]}",
        f"tenios-archive --config {env.config_file} audit export-events",
        f"sqlite3 {env.ledger_file}",
    ):
        console.print(command, soft_wrap=True, markup=False, highlight=False)
    console.print(
        "Commands that reach S3 or the API (audit verify, audit verify-chain, run) need the "
        "servers: run the demo again.",
        soft_wrap=True,
    )
    raise typer.Exit(max(int(first["exit_code"]), int(second["exit_code"])))


def _serve_until_interrupted(config_file: Path, s3_endpoint: str) -> None:
    """The demo's servers stay up until Ctrl-C: the lines to copy into another shell
    (one command per line, outside any box) to use them."""
    import threading

    from tenios_io.simulator.demo import DEMO_AWS

    aws = " ".join(f"{k}={v}" for k, v in {**DEMO_AWS, "AWS_ENDPOINT_URL_S3": s3_endpoint}.items())
    console.print("\nThe servers keep running (Ctrl-C stops them). In another shell:")
    for line in (
        f"export {aws}",
        f"tenios-archive --config {config_file} audit verify-chain",
        f"tenios-archive --config {config_file} audit verify --all",
        f"tenios-archive --config {config_file} run nightly",
    ):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    try:
        threading.Event().wait()  # until SIGINT: nothing to poll, the servers run in threads
    except KeyboardInterrupt:
        console.print("stopping the demo's servers")


def _audit(cfg: Settings, out_dir: Path) -> tuple[str, Path]:
    """Chain and checkpoints, every archived object against the ledger, the report."""
    from tenios_io.audit import (
        build_report,
        check_checkpoints,
        open_audit,
        select_recordings,
        verify_archive,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    with open_audit(cfg, actor=cli_actor("demo")) as audit:
        store = audit.require_store()
        chain = audit.ledger.verify_chain()
        checkpoints = check_checkpoints(audit.ledger, store)
        selection = select_recordings(audit.ledger, "all")
        verified = verify_archive(audit.ledger, store, selection.recordings)
        report = build_report(audit.ledger, out_dir, store=store)
    line = (
        f"custody chain {'OK' if chain.ok else 'BROKEN'} ({chain.events:,} events), "
        f"{checkpoints.checked} checkpoint(s) {'agree' if checkpoints.ok else 'DISAGREE'}; "
        f"{verified.verified}/{verified.checked} archived objects match the ledger"
    )
    return line, report.files["html"]
