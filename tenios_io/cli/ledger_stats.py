"""`tenios-archive ledger stats`: the backlog for monitoring, as text, JSON or
Prometheus metrics.  Only typer at module level: the ledger package, Rich tables and
prometheus_client are imported when the command runs (the CLI starts fast)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tenios_io.ledger import Ledger
    from tenios_io.ledger.stats import LedgerStats


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    textfile: Annotated[
        Path | None,
        typer.Option(
            "--prometheus-textfile",
            help="Write the figures as Prometheus metrics to FILE (atomically: for "
            "node_exporter's textfile collector, name it *.prom); prints nothing else "
            "unless --json.",
            metavar="FILE",
            dir_okay=False,
        ),
    ] = None,
    serve: Annotated[
        int | None,
        typer.Option(
            "--serve",
            help="Serve the figures as Prometheus metrics on http://127.0.0.1:PORT/metrics, "
            "read afresh at every scrape, until Ctrl-C.",
            metavar="PORT",
            min=1,
            max=65535,
        ),
    ] = None,
) -> None:
    """The backlog: due now, how long the most overdue recording has waited, in progress
    (expired leases), failed/missing/conflict and archived in the last 24 h, archived per
    hour, custody events queued."""
    from tenios_io.cli._common import settings
    from tenios_io.ledger import open_ledger
    from tenios_io.ledger.stats import collect

    if serve is not None and (textfile is not None or as_json):
        raise typer.BadParameter(
            "--serve runs until Ctrl-C; use it without --json and --prometheus-textfile",
            param_hint="--serve",
        )
    if serve is not None:
        with open_ledger(settings(ctx)) as ledger:
            _serve(ledger, serve)
        return
    if textfile is not None and not textfile.parent.is_dir():
        raise typer.BadParameter(
            f"cannot write {textfile}: {textfile.parent} is not a directory",
            param_hint="--prometheus-textfile",
        )
    with open_ledger(settings(ctx)) as ledger:
        snapshot = collect(ledger, ledger.clock_now())
    if textfile is not None:
        _write_textfile(textfile, snapshot)
    if as_json:
        sys.stdout.write(json.dumps(snapshot.as_json()) + "\n")
    elif textfile is None:
        _print(snapshot)


def _write_textfile(path: Path, snapshot: LedgerStats) -> None:
    """prometheus_client's textfile writer: a temporary file beside ``path`` (a name
    node_exporter ignores, as it reads only ``*.prom``), renamed over it when complete,
    readable by the exporter's user (umask), unlike a mkstemp file."""
    from prometheus_client import write_to_textfile

    from tenios_io.ops.metrics import registry_for

    try:
        write_to_textfile(str(path), registry_for(lambda: snapshot))
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {path}: {exc.strerror or exc}", param_hint="--prometheus-textfile"
        ) from None


def _print(snapshot: LedgerStats) -> None:
    from rich.table import Table

    from tenios_io.cli._common import console
    from tenios_io.ops.monitoring import rows

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, value in rows(snapshot):
        table.add_row(label, value)
    console.print(table)


def _serve(ledger: Ledger, port: int) -> None:
    """Serve /metrics on loopback until Ctrl-C (prometheus_client's own HTTP server: a
    thread answering each scrape with a fresh snapshot)."""
    from prometheus_client import start_http_server

    from tenios_io.cli._common import console
    from tenios_io.ledger.stats import collect
    from tenios_io.ops.metrics import registry_for

    registry = registry_for(lambda: collect(ledger, ledger.clock_now()))
    try:
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} (choose another port)",
            param_hint="--serve",
        ) from None
    console.print(f"serving http://127.0.0.1:{port}/metrics (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.shutdown()
        server.server_close()
