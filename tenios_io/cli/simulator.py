"""`tenios-archive simulator ...`: the local TENIOS API stand-in (demo, tests, trials)."""

from __future__ import annotations

import secrets
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tenios_io.cli._common import console, err_console, output_file, settings

if TYPE_CHECKING:  # imported where used: `--help` loads nothing heavy (issue 27)
    from tenios_io.simulator import FaultPlan

app = typer.Typer(
    help="The TENIOS record-call API simulator: serve it, or seed recordings into one.",
    no_args_is_help=True,
)

_LISTED = 50
"""Up to this many seeded uuids are printed one by one; beyond, only the count."""

_FAULT_GRAMMAR = """\
--fault SPEC: comma-separated KEY=VALUE items, all optional:

\b
  500=P, 503=P, 429=P  chance (0..1) that a request gets that status
  truncate=P           chance of a body cut at half (full Content-Length sent)
  reset=P              chance of a TCP reset in the middle of an answer
  retry-after=S|none   Retry-After seconds on 429 and 503 (default 1)
  latency=S            every answer is delayed by a random 0..S seconds
  not-ready=S          a stopped recording answers 404 for S seconds
  redirect=P           chance of a 308 to https:// (1: every request)
  revoked-after=N      the key is refused (403) from the N-th request on
  schedule=T:T:...     tokens used one per request, before any chance:
                       ok, truncate, reset, slow (waits latency, or 1 s),
                       redirect, or a status 400-599 (404 on retrieve: not
                       ready); wrong bodies on a retrieve's 200: close (no
                       Content-Length), cut (close-delimited, half),
                       json200 / html200 (an error document), shortwav
                       (half a WAV with a matching Content-Length)

\b
Examples:
  --fault 500=0.05,503=0.05,429=0.05,retry-after=1,latency=0.2
  --fault truncate=0.02,reset=0.02,not-ready=30,schedule=503:429:ok"""


def _fault_plan(value: str | None) -> FaultPlan | None:
    """``--fault`` parsed here, not by Typer: the option's type would import the
    simulator (and its HTTP stack) for every `--help`."""
    if value is None:
        return None
    from tenios_io.simulator import FaultPlan

    try:
        return FaultPlan.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None


@app.command("serve", epilog=_FAULT_GRAMMAR)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).", min=0, max=65535)] = 8765,
    recordings: Annotated[
        int, typer.Option("--recordings", "-n", help="Finished recordings to seed.", min=0)
    ] = 10,
    drop_dir: Annotated[
        Path | None,
        typer.Option(help="SFTP drop folder to deliver finished recordings into.", file_okay=False),
    ] = None,
    drop_pattern: Annotated[
        str,
        typer.Option(
            help="File name in the drop folder: {recording_uuid}, {call_uuid}, "
            "{date:%Y%m%d}, {channels}."
        ),
    ] = "{recording_uuid}.wav",
    fault: Annotated[
        str | None,
        typer.Option(
            "--fault",
            metavar="SPEC",
            help="Faults to inject (grammar below).",
            show_default=False,
        ),
    ] = None,
    access_key: Annotated[
        str | None,
        typer.Option(
            help="Key the simulator accepts (default: TENIOS_ACCESS_KEY, else a random one).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for uuids, audio and fault dice.")] = 0,
    ids_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the seeded recordings here as a CSV (recording_uuid,call_uuid) that "
            "`ledger import` takes.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Serve the simulated TENIOS record-call API until Ctrl-C.

    Prints the URL and access key to use (TENIOS_API_URL, TENIOS_ACCESS_KEY) and
    the uuids of the seeded recordings.
    """
    from tenios_io.simulator import Simulator, bind_socket, serve_forever

    plan = _fault_plan(fault)  # a bad spec is a usage error before anything starts
    if access_key is None:
        configured = settings(ctx).access_key
        access_key = configured.get_secret_value() if configured else None
    key = access_key or f"sim-{secrets.token_hex(8)}"
    try:
        sim = Simulator(
            access_key=key,
            seed=seed,
            faults=plan,
            drop_dir=drop_dir,
            drop_name_pattern=drop_pattern,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if drop_dir is not None:
        drop_dir.mkdir(parents=True, exist_ok=True)
    uuids = sim.seed(recordings)
    if ids_file is not None:
        with output_file(ids_file, option="--ids-file") as out:
            out.write("recording_uuid,call_uuid\n")
            out.writelines(f"{u},{sim.recording(u).call_uuid}\n" for u in uuids)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        err_console.print(f"[bold red]error:[/] cannot listen on {host}:{port}: {exc.strerror}")
        raise typer.Exit(1) from None
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"

    console.print(f"TENIOS simulator at {url}", soft_wrap=True)
    console.print(f"access key: {key}", soft_wrap=True)
    console.print(f"faults: {sim.plan.to_spec() or 'none'}", soft_wrap=True)
    if sim.drop is not None:
        console.print(f"drop folder: {sim.drop.directory} ({drop_pattern})", soft_wrap=True)
    console.print(f"{len(uuids)} recording(s) ready", soft_wrap=True)
    if ids_file is not None:
        console.print(
            f"their ids: {ids_file} (tenios-archive ledger import {ids_file})", soft_wrap=True
        )
    elif len(uuids) <= _LISTED:
        for recording_uuid in uuids:
            console.print(f"  {recording_uuid}", soft_wrap=True)
    else:
        console.print("  (more than 50: --ids-file FILE writes them all)", soft_wrap=True)
    console.print(
        f"use it: export TENIOS_API_URL={url} TENIOS_ACCESS_KEY={key}   (Ctrl-C stops it)",
        soft_wrap=True,
    )
    sys.stdout.flush()
    try:
        serve_forever(sim, sock)
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully and re-raised the SIGINT it caught
    finally:
        sock.close()
    err_console.print("simulator stopped")


@app.command("seed")
def seed(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", "-n", help="Recordings to create.", min=1)] = 10,
    url: Annotated[
        str | None,
        typer.Option(help="API base URL (default: TENIOS_API_URL).", show_default=False),
    ] = None,
    access_key: Annotated[
        str | None,
        typer.Option(help="Access key (default: TENIOS_ACCESS_KEY).", show_default=False),
    ] = None,
) -> None:
    """Create recordings through the API (start, then stop), printing their uuids.

    Works against any TENIOS API, simulated or not: each recording gets a new call_uuid.
    A transient failure (a 5xx, a reset: the simulator's own injected faults) is
    retried with a fresh call, as a telephony application would; it gives up after
    more failures than recordings asked for (at least 10).
    """
    from tenios_io.api import TeniosClient, make_http_client
    from tenios_io.exceptions import ApiUnavailable

    config = settings(ctx)
    key = access_key or config.require_access_key()
    made = failures = 0
    with make_http_client(url or config.api_url, pool_size=1) as http:
        client = TeniosClient(http, key)
        while made < count:
            call_uuid = str(uuid.uuid4())
            try:
                # A start whose answer was lost is not repeated (it may have started one):
                # a fresh call is, so at worst TENIOS keeps a recording nobody asked for.
                recording_uuid = client.start_recording(call_uuid)
                client.stop_recording(recording_uuid, call_uuid=call_uuid)
            except ApiUnavailable as exc:
                failures += 1
                if failures > max(10, count):
                    raise
                err_console.print(f"[yellow]retrying with a new call:[/] {exc}", soft_wrap=True)
                continue
            made += 1
            console.print(recording_uuid, soft_wrap=True)
    retried = f" ({failures} transient failure(s) retried)" if failures else ""
    err_console.print(f"{count} recording(s) started and stopped{retried}")
