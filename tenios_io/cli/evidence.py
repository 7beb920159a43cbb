"""`tenios-archive audit evidence | check-evidence`: evidence packages that prove themselves.

Registered on the ``audit`` group by :func:`register`; heavy imports stay inside the
commands (``--help`` stays fast).  Exit codes as everywhere: 0 ok, 1 problems found or
the export failed, 2 usage or configuration error.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tenios_io.cli._common import console, err_console, settings, shown

if TYPE_CHECKING:
    from tenios_io.custody.evidence import EvidenceCheck

_MAX_ZIP_MEMBERS = 100_000


def evidence(
    ctx: typer.Context,
    recording_uuids: Annotated[
        list[str], typer.Argument(metavar="UUID", help="The recordings to hand out.")
    ],
    reason: Annotated[
        str,
        typer.Option(
            help="Why they are handed out (e.g. 'client request under MiFID II Art. 76(8), "
            "ticket 4711'); logged in the custody log with who exported them."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            help="Folder for the packages: one DIR/<recording_uuid>/ each.", file_okay=False
        ),
    ],
    zip_file: Annotated[
        Path | None,
        typer.Option("--zip", metavar="FILE", help="Also write the packages as one zip file."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace a package folder that already exists.")
    ] = False,
) -> None:
    """Write each recording's evidence package: its bytes, proofs and a page that checks them.

    Every package holds the recording as archived (the logged S3 version), evidence.json
    (what S3 says about that version now, the ledger row, every custody event), a
    C2SP tlog-proof per event against a freshly signed checkpoint, verify.html (opens
    offline in any browser and re-checks everything) and README.txt.  The hand-over
    itself is logged first, as an `exported` event (who, why, what), and proved in
    the package.  Check a package without the page: `audit check-evidence DIR`.
    """
    from tenios_io.audit import open_audit
    from tenios_io.audit.evidence import EvidenceRefused, build_packages, check_reason, write_zip
    from tenios_io.cli._common import cli_actor
    from tenios_io.publish.identity import bind_bucket
    from tenios_io.publish.log import custody_signer
    from tenios_io.publish.witnessing import load_witnesses, witness_session

    try:
        check_reason(reason)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--reason") from None
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is not a folder", param_hint="--output")
    actor = cli_actor("audit-evidence")
    cfg = settings(ctx)
    # exit 2 before anything is logged: no key (unless TENIOS_CUSTODY_UNSIGNED), bad witnesses
    signer = custody_signer(cfg.custody_key_file, unsigned=cfg.custody_unsigned)
    witnesses = load_witnesses(cfg.custody_witnesses, cfg.custody_witness_quorum)
    with open_audit(cfg, actor=actor) as audit, witness_session(witnesses) as session:
        store = audit.require_store()
        bind_bucket(audit.ledger, store)
        try:
            packages = build_packages(
                audit.ledger,
                store,
                recording_uuids,
                reason=reason,
                output=output,
                actor=actor,
                signer=signer,
                log_key=signer.verifier if signer is not None else None,
                witnesses=session,
                force=force,
            )
        except EvidenceRefused as exc:
            err_console.print(f"[bold red]error:[/] {shown(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
    for package in packages:
        if package.size is None:
            what = "purged: the package proves the purge, no recording"
        elif package.embedded:
            what = f"{package.size:,} bytes, inside verify.html too"
        else:
            what = f"{package.size:,} bytes (verify.html asks for the file: too large to embed)"
        console.print(f"{package.folder}/  {what}", soft_wrap=True, highlight=False)
    if zip_file is not None:
        write_zip([p.folder for p in packages], zip_file)
        console.print(f"{zip_file}: {len(packages)} package(s)", soft_wrap=True, highlight=False)
    if signer is None:
        err_console.print(
            "[yellow]warning:[/] the checkpoint is UNSIGNED (TENIOS_CUSTODY_KEY_FILE is not "
            "set): the packages' checkpoint step fails",
            soft_wrap=True,
        )
    console.print(
        f"logged as `exported` ({len(packages)} event(s)); open verify.html in a browser, "
        "or run `tenios-archive audit check-evidence` on the folder",
        soft_wrap=True,
        style="dim",
    )


def check_evidence(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="DIR|ZIP",
            help="One package folder, a folder of packages, or a zip from `audit evidence`.",
        ),
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="VERIFIER_KEY",
            help="The log's verifier key as you obtained it (default: the package's own).",
        ),
    ] = None,
) -> None:
    """Verify evidence packages from their files alone (no bucket, no database).

    Checks, per package: the checkpoint's signature (checkpoint), the witnesses'
    cosignatures (cosignature), that the events are the proved entries of this
    recording and none is missing (event), each event's inclusion proof
    (inclusion), and the recording's SHA-256 (recording).  Exit 0 when every
    package verifies, 1 naming the failed step otherwise.
    """
    from tenios_io.custody import signing
    from tenios_io.custody.evidence import EvidenceError, check_package

    pinned = None
    if key is not None:
        try:
            pinned = signing.parse_verifier(key)
        except signing.NoteError as exc:
            raise typer.BadParameter(str(exc), param_hint="--key") from None
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="DIR|ZIP")
    with tempfile.TemporaryDirectory(prefix="tenios-evidence-") as scratch:
        root = _unzipped(path, Path(scratch)) if path.is_file() else path
        folders = _package_folders(root)
        if not folders:
            raise typer.BadParameter(
                f"{path} holds no evidence package (no evidence.json)", param_hint="DIR|ZIP"
            )
        failed = 0
        for folder in folders:
            try:
                result = check_package(folder, log_key=pinned)
            except EvidenceError as exc:
                err_console.print(f"[bold red]{folder.name}:[/] {shown(str(exc))}", soft_wrap=True)
                failed += 1
                continue
            failed += not result.ok
            _print_result(folder, result)
    if failed:
        err_console.print(
            f"[bold red]{failed} of {len(folders)} package(s) did NOT verify[/]", soft_wrap=True
        )
        raise typer.Exit(1)
    console.print(f"[green]{len(folders)} package(s) verified[/]", soft_wrap=True)


def _print_result(folder: Path, result: EvidenceCheck) -> None:
    if result.ok:
        archived = result.archived or {}
        console.print(
            f"{shown(result.recording_uuid)}: verified — archived {result.archived_at}, "
            f"SHA-256 {shown(str(archived.get('sha256')))}, retained "
            f"{shown(str(archived.get('retention_mode')))} until "
            f"{shown(str(archived.get('retain_until')))}",
            soft_wrap=True,
            highlight=False,
        )
        for name, step in result.steps.items():
            console.print(f"  ok  {name:<12} {shown(step.detail)}", soft_wrap=True, highlight=False)
        return
    console.print(
        f"[bold red]{shown(result.recording_uuid or folder.name)}: FAILED at step "
        f"{result.failed_step}[/]",
        soft_wrap=True,
    )
    for name, step in result.steps.items():
        mark = "ok  " if step.ok else "FAIL"
        console.print(f"  {mark} {name:<12} {shown(step.detail)}", soft_wrap=True, highlight=False)
        for problem in step.problems:
            console.print(f"       {shown(problem)}", soft_wrap=True, highlight=False)


def _package_folders(root: Path) -> list[Path]:
    if (root / "evidence.json").is_file():
        return [root]
    return sorted(p.parent for p in root.glob("*/evidence.json"))


def _unzipped(path: Path, scratch: Path) -> Path:
    """A zip's packages extracted into ``scratch`` — only names that stay inside it."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > _MAX_ZIP_MEMBERS:
                raise typer.BadParameter(f"{path} holds too many files", param_hint="DIR|ZIP")
            for member in members:
                target = (scratch / member.filename).resolve()
                if not target.is_relative_to(scratch.resolve()) or member.is_dir():
                    continue  # absolute or ../ names: never outside the scratch folder
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, target.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
    except zipfile.BadZipFile:
        raise typer.BadParameter(f"{path} is not a zip file", param_hint="DIR|ZIP") from None
    return scratch


def register(app: typer.Typer) -> None:
    """Add the evidence commands to the ``audit`` group."""
    app.command()(evidence)
    app.command("check-evidence")(check_evidence)
