"""`tenios-archive api ...`: call the TENIOS record-call API by hand.

Library errors (not found, access denied, invalid field) leave through
:func:`tenios_io.cli.main` as one line and exit 1; a missing TENIOS_ACCESS_KEY
or a malformed argument exits 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tenios_io.cli._common import console, err_console, settings
from tenios_io.config import UUID_RE

if TYPE_CHECKING:  # imported where used: `--help` loads nothing heavy (issue 27)
    from tenios_io.api import TeniosClient
    from tenios_io.config import Settings

app = typer.Typer(
    help="Call the TENIOS record-call API (start, stop, retrieve a recording).",
    no_args_is_help=True,
)

_UUID = re.compile(UUID_RE)


def _uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    return value.lower()


@contextlib.contextmanager
def _client(config: Settings) -> Iterator[TeniosClient]:
    from tenios_io.api import TeniosClient, make_http_client

    access_key = config.require_access_key()  # ConfigError → exit 2
    with make_http_client(config.api_url, pool_size=1) as http:
        yield TeniosClient(http, access_key)


@app.command("start")
def start(
    ctx: typer.Context,
    call_uuid: Annotated[
        str, typer.Argument(help="The call to record.", callback=_uuid, show_default=False)
    ],
    no_caller: Annotated[
        bool, typer.Option("--no-caller", help="Do not record the caller's voice.")
    ] = False,
    no_callee: Annotated[
        bool, typer.Option("--no-callee", help="Do not record the called party's voice.")
    ] = False,
) -> None:
    """Start recording a call; print the recording_uuid and register it in the ledger.

    The recording goes through the intake, as any producer's would (one INSERT into
    ``recording_intake``), and the intake is drained at once.
    """
    from tenios_io.ledger import open_ledger

    if no_caller and no_callee:
        raise typer.BadParameter("--no-caller and --no-callee together would record nothing")
    config = settings(ctx)
    config.require_access_key()  # ConfigError → exit 2, before anything else
    # The ledger first (migrated, reachable): a recording started at TENIOS whose id the
    # archive cannot register would run there unknown to it.
    with open_ledger(config) as ledger:
        with _client(config) as client:
            recording_uuid = client.start_recording(
                call_uuid,
                record_caller=False if no_caller else None,
                record_callee=False if no_callee else None,
            )
        # Printed before registering: if that fails, the uuid is not lost.
        console.print(recording_uuid, soft_wrap=True)
        ledger.submit_intake(recording_uuid, call_uuid=call_uuid, producer="cli:api-start")
        ledger.drain_intake(actor="cli:api-start")
    err_console.print(f"registered {recording_uuid} (call {call_uuid}) in the ledger")


@app.command("stop")
def stop(
    ctx: typer.Context,
    recording_uuid: Annotated[
        str, typer.Argument(help="The recording to stop.", callback=_uuid, show_default=False)
    ],
    call_uuid: Annotated[
        str | None,
        typer.Option("--call-uuid", help="The recording's call (sent along, as TENIOS's example)."),
    ] = None,
) -> None:
    """Stop a recording."""
    if call_uuid is not None:
        call_uuid = _uuid(call_uuid)
    with _client(settings(ctx)) as client:
        client.stop_recording(recording_uuid, call_uuid=call_uuid)
    console.print(f"stopped {recording_uuid}", soft_wrap=True)


@app.command("retrieve")
def retrieve(
    ctx: typer.Context,
    recording_uuid: Annotated[
        str, typer.Argument(help="The recording to download.", callback=_uuid, show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="File to write (atomically).", dir_okay=False, show_default=False
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Why you fetch it: logged with the hand-over when the archive holds the "
            "recording (an `exported` custody event).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download a recording into FILE; print its size and SHA-256.

    The bytes go to a temporary file beside FILE, which is renamed only once the
    download is complete and its length is right.  When the ledger (TENIOS_DATABASE_URL)
    has archived the recording, the hand-over is logged first as an `exported` custody
    event (who, --reason, what), like every copy of an archived recording.
    """
    if output.exists() and not force:
        err_console.print(f"[bold red]error:[/] {output} exists; pass --force to overwrite it")
        raise typer.Exit(1)
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise typer.BadParameter(f"directory {directory} does not exist", param_hint="--output")

    cfg = settings(ctx)
    if reason is not None:
        from tenios_io.audit.evidence import check_reason

        try:
            reason = check_reason(reason)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--reason") from None
    _log_hand_over(cfg, recording_uuid, reason)
    with _client(cfg) as client:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.", suffix=".part")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "w+b") as sink:
                result = client.retrieve_recording(recording_uuid, sink)
                sink.flush()
                os.fsync(sink.fileno())
                written = os.fstat(sink.fileno()).st_size
                if written != result.size:
                    err_console.print(
                        f"[bold red]error:[/] wrote {written} bytes but received {result.size}; "
                        f"{output} left untouched"
                    )
                    raise typer.Exit(1)
                sink.seek(0)
                digest = hashlib.file_digest(sink, "sha256").hexdigest()
            os.replace(temp, output)
        finally:
            temp.unlink(missing_ok=True)
    console.print(f"{output}: {result.size} bytes, sha256 {digest}", soft_wrap=True)


def _log_hand_over(cfg: Settings, recording_uuid: str, reason: str | None) -> None:
    """An archived recording's bytes are on the record before they leave (see
    tenios_io.audit.evidence.log_hand_over)."""
    from tenios_io.audit.evidence import log_hand_over
    from tenios_io.cli._common import cli_actor

    seq = log_hand_over(
        cfg,
        recording_uuid,
        reason=reason,
        handed_out="api retrieve (from TENIOS)",
        actor=cli_actor("api-retrieve"),
    )
    if seq is not None:
        err_console.print(
            f"the archive holds {recording_uuid}: this copy is logged as custody event {seq} "
            "(exported)",
            soft_wrap=True,
            style="dim",
        )
