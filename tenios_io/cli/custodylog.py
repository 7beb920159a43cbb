"""`tenios-archive audit keygen | verify-bucket | prove | check-proof`: the custody log.

These commands are registered on the ``audit`` group by :func:`register`.  Heavy
imports (boto3, the verifier) stay inside the command functions so ``--help`` and
the other commands start fast.  Exit codes as everywhere: 0 ok, 1 problems found,
2 usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tenios_io.cli._common import console


def keygen(
    name: Annotated[
        str,
        typer.Option(help="Key name, e.g. the archive's domain; appears on every signature."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            help="Where to write the private key (mode 0600; never overwritten).", dir_okay=False
        ),
    ],
) -> None:
    """Create an Ed25519 key that signs the custody log's checkpoints.

    Writes the private key to --output (set TENIOS_CUSTODY_KEY_FILE to it) and prints
    the public verifier key ``NAME+HASH+KEY`` that auditors pass to ``--key``.
    """
    from tenios_io import signing

    try:
        signer = signing.generate(name)
    except signing.NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    try:
        signing.write_signer(output, signer)
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
        f"private key written to {output} (mode 0600): set TENIOS_CUSTODY_KEY_FILE={output}; "
        "give auditors the verifier key above",
        soft_wrap=True,
        style="dim",
    )


def register(app: typer.Typer) -> None:
    """Add the custody log's commands to the ``audit`` group."""
    app.command()(keygen)
