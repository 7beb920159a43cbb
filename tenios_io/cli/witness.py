"""`tenios-archive witness keygen | serve`: a witness of the custody log (C2SP tlog-witness).

Run by the compliance team or an external auditor, not by the archive's operator:
its key and state folder must stay out of the operator's reach, or it witnesses
nothing.  Exit codes as everywhere: 0 ok, 1 failure, 2 usage.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tenios_io.cli._common import console, err_console, shown

if TYPE_CHECKING:
    from tenios_io.custody import signing

app = typer.Typer(
    help="A witness of the custody log: cosigns checkpoints that extend what it saw.",
    no_args_is_help=True,
)


@app.command("keygen")
def keygen(
    name: Annotated[
        str,
        typer.Option(help="The witness's name, e.g. witness.acme-audit.example (no spaces, no +)."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            help="Where to write the private key (mode 0600; never overwritten).", dir_okay=False
        ),
    ],
) -> None:
    """Create the witness's Ed25519 cosignature/v1 key.

    Writes the private key to --output (give it to `witness serve --key`) and prints
    the verifier key NAME+KEYID+KEY that the archive's TENIOS_CUSTODY_WITNESSES and
    auditors' `verify-bucket --witness` name.
    """
    from tenios_io.custody.cosignature import WitnessSigner
    from tenios_io.custody.signing import NoteError

    try:
        signer = WitnessSigner.generate(name)
    except NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    try:
        signer.write(output)
    except FileExistsError:
        raise typer.BadParameter(
            f"{output} already exists; refusing to overwrite a key (choose another path)",
            param_hint="--output",
        ) from None
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {output}: {exc.strerror}", param_hint="--output"
        ) from None
    console.print(str(signer.verifier), soft_wrap=True)
    console.print(
        f"private key written to {output} (mode 0600): serve with `tenios-archive witness "
        f"serve --key {output} ...`; give the verifier key above to the archive's operator "
        "(TENIOS_CUSTODY_WITNESSES) and to auditors (--witness)",
        soft_wrap=True,
        style="dim",
    )


def _log_key(text: str) -> signing.Verifier:
    from tenios_io.custody import signing

    try:
        return signing.parse_verifier(text)
    except signing.NoteError as exc:
        raise typer.BadParameter(f"{exc} ({shown(text, 60)})", param_hint="--log") from None


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise typer.BadParameter(
            f"{shown(value, 60)} is not HOST:PORT (e.g. 127.0.0.1:7380; port 0: any free port)",
            param_hint="--listen",
        )
    return host, int(port)


@app.command("serve")
def serve(
    key: Annotated[
        Path,
        typer.Option(
            help="The witness's private key file (from `witness keygen`).", dir_okay=False
        ),
    ],
    state: Annotated[
        Path,
        typer.Option(
            help="Folder of the witness's state: the latest checkpoint it cosigned per log. "
            "Keep it (and back it up): a witness that forgets cosigns a rewritten log.",
            file_okay=False,
        ),
    ],
    log: Annotated[
        list[str],
        typer.Option(
            "--log",
            metavar="VERIFIER_KEY",
            help="Verifier key of a log to witness (as `audit keygen` printed it); repeatable.",
        ),
    ],
    listen: Annotated[
        str, typer.Option(metavar="HOST:PORT", help="Address to listen on (port 0: any free port).")
    ] = "127.0.0.1:7380",
) -> None:
    """Serve C2SP tlog-witness POST /add-checkpoint until Ctrl-C.

    Cosigns each checkpoint signed by a --log key that extends the last one it
    cosigned for that log's origin (409 / 422 otherwise, as the spec says), and keeps
    a refused, validly signed checkpoint in STATE/refused/ as evidence.
    """
    from tenios_io.custody.cosignature import WitnessSigner
    from tenios_io.custody.signing import NoteError
    from tenios_io.witness import Witness, WitnessState
    from tenios_io.witness.server import WitnessServer, bind

    logs = [_log_key(text) for text in log]
    host, port = _listen(listen)
    try:
        signer = WitnessSigner.read(key)
    except FileNotFoundError:
        raise typer.BadParameter(f"{key} does not exist", param_hint="--key") from None
    except (OSError, NoteError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise typer.BadParameter(f"cannot use {key}: {reason}", param_hint="--key") from None
    try:
        witness_state = WitnessState(state)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot use {state}: {exc.strerror}", param_hint="--state"
        ) from None
    try:
        sock = bind(host, port)
    except OSError as exc:
        err_console.print(f"[bold red]error:[/] cannot listen on {host}:{port}: {exc.strerror}")
        raise typer.Exit(1) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = WitnessServer(Witness(signer, logs, witness_state), sock)
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    console.print(f"witness {signer.verifier} at http://{shown_host}:{bound_port}", soft_wrap=True)
    console.print(f"following {len(logs)} log key(s); state in {state}", soft_wrap=True)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    err_console.print("witness stopped")
