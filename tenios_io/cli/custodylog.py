"""`tenios-archive audit keygen | verify-bucket | prove | check-proof`: the custody log.

These commands are registered on the ``audit`` group by :func:`register`.  Heavy
imports (boto3, the verifier) stay inside the command functions so ``--help`` and
the other commands start fast.  Exit codes as everywhere: 0 ok, 1 problems found,
2 usage or configuration error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tenios_io.cli._common import console, err_console, settings, shown

if TYPE_CHECKING:
    from tenios_io.custody import signing
    from tenios_io.custody.cosignature import WitnessPolicy
    from tenios_io.custody.proof import ProofCheck, ProofsCheck
    from tenios_io.store import ArchiveStore

_PINNED_MAX_BYTES = 64 * 1024
KeyOption = Annotated[
    str,
    typer.Option(
        "--key",
        metavar="VERIFIER_KEY",
        help="The archive's public verifier key NAME+HASH+KEY (as `audit keygen` printed it), "
        "or the file holding it (the .pub file `audit keygen` wrote beside the key).",
    ),
]
BucketOption = Annotated[
    str | None, typer.Option(help="The archive bucket (default TENIOS_S3_BUCKET).")
]
PrefixOption = Annotated[
    str | None, typer.Option(help="The archive's key prefix (default TENIOS_S3_PREFIX).")
]


def keygen(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            help="Where to write the private key (mode 0600; never overwritten).", dir_okay=False
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help="Key name, on every signature line (default: the log's origin "
            "tenios-archive/BUCKET/PREFIX from TENIOS_S3_BUCKET and TENIOS_S3_PREFIX; "
            "required without them).",
        ),
    ] = None,
) -> None:
    """Create an Ed25519 key that signs the custody log's checkpoints.

    Writes the private key to --output (set TENIOS_CUSTODY_KEY_FILE to it) and prints
    the public verifier key ``NAME+HASH+KEY`` that auditors pass to ``--key``.  The
    key is named for the log's origin, as C2SP signed-note asks; to replace the key of
    a log that is already signed, use `audit rotate-key` with the new key.
    """
    from tenios_io.custody import signing

    if name is None:
        name = _origin_name(ctx)
    try:
        signer = signing.generate(name)
    except signing.NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    with _writing(output, "already exists; refusing to overwrite a key (choose another path)"):
        signing.write_signer(output, signer)
    public = output.with_name(output.name + ".pub")
    try:  # the verifier key beside it, for auditors and `audit verify-bucket --key FILE`
        public.write_text(str(signer.verifier) + "\n", encoding="ascii")
    except OSError as exc:
        err_console.print(f"[yellow]warning:[/] {public} not written: {exc.strerror}")
    console.print(str(signer.verifier), soft_wrap=True)
    console.print(
        f"private key written to {output} (mode 0600): set TENIOS_CUSTODY_KEY_FILE={output}; "
        f"give auditors the verifier key above (also in {public})",
        soft_wrap=True,
        style="dim",
        markup=False,
    )


@contextmanager
def _writing(output: Path, if_exists: str) -> Iterator[None]:
    """--output's FileExistsError / OSError as a usage error (exit 2) naming the path."""
    try:
        yield
    except FileExistsError:
        raise typer.BadParameter(f"{output} {if_exists}", param_hint="--output") from None
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {output}: {exc.strerror}", param_hint="--output"
        ) from None


def _origin_name(ctx: typer.Context) -> str:
    """The log's origin from the settings, for keygen's default --name."""
    from tenios_io.custody.layout import default_origin

    cfg = settings(ctx)
    if not cfg.s3_bucket:
        raise typer.BadParameter(
            "give --name, or set TENIOS_S3_BUCKET (and TENIOS_S3_PREFIX) so the key is "
            "named for the log's origin tenios-archive/BUCKET/PREFIX",
            param_hint="--name",
        )
    return default_origin(cfg.s3_bucket, cfg.s3_prefix.strip("/"))


def rotate_key(
    ctx: typer.Context,
    new_key: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="The new private key file (from `audit keygen`); TENIOS_CUSTODY_KEY_FILE "
            "holds the key that signs the log now.",
            dir_okay=False,
        ),
    ],
) -> None:
    """Change the custody signing key, in the log: the old key vouches for the new one.

    Logs a `key_rotated` custody event naming the old and the new verifier keys and
    publishes it in a checkpoint signed by the old key (TENIOS_CUSTODY_KEY_FILE).
    Then set TENIOS_CUSTODY_KEY_FILE to --new-key: runs accept the new key and refuse
    the old one from then on.  Auditors keep the original key: verify-bucket follows
    the rotation (or give check-proof both keys).  Safe to run again.
    """
    from tenios_io.audit import open_audit
    from tenios_io.cli._common import cli_actor
    from tenios_io.custody import signing
    from tenios_io.publish.identity import bind_bucket
    from tenios_io.publish.log import load_signer
    from tenios_io.publish.rotation import rotate_key as run_rotation

    cfg = settings(ctx)
    old = load_signer(cfg.custody_key_file)
    if old is None:
        raise typer.BadParameter(
            "set TENIOS_CUSTODY_KEY_FILE to the key that signs the log now",
            param_hint="TENIOS_CUSTODY_KEY_FILE",
        )
    try:
        new = signing.read_signer(new_key.expanduser())
    except (OSError, signing.NoteError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise typer.BadParameter(
            f"cannot use {new_key} as a custody key ({reason}); create one with "
            "`tenios-archive audit keygen --output FILE`",
            param_hint="--new-key",
        ) from None
    with open_audit(cfg, actor=cli_actor("audit-rotate-key")) as audit:
        store = audit.require_store()
        bind_bucket(audit.ledger, store)
        rotated = run_rotation(audit.ledger, store, old, new, actor=audit.ledger.actor)
        bucket = store.bucket
    again = "" if rotated.logged_now else " (logged by an earlier call)"
    console.print(
        f"key rotated at custody event {rotated.rotation.seq}{again}: {old.verifier} → "
        f"{new.verifier}, published in s3://{bucket}/{rotated.checkpoint.key} signed by "
        "the old key",
        soft_wrap=True,
    )
    console.print(
        f"next: set TENIOS_CUSTODY_KEY_FILE={new_key}; give auditors the new verifier key "
        "(they may keep the old one: verify-bucket follows the rotation)",
        soft_wrap=True,
    )


def _verifier(text: str) -> signing.Verifier:
    """``--key``: the verifier key itself, or a file whose first line it is."""
    from tenios_io.custody import signing

    path = Path(text).expanduser()
    if "+" not in path.name and path.is_file():  # a key always holds '+': this is a file
        try:
            text = path.read_text(encoding="ascii").strip().splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError):
            raise typer.BadParameter(f"{path} holds no verifier key", param_hint="--key") from None
    try:
        return signing.parse_verifier(text)
    except signing.NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--key") from None


def _policy(texts: list[str], quorum: int | None) -> WitnessPolicy | None:
    from tenios_io.custody.cosignature import WitnessPolicy, parse_witness_verifier
    from tenios_io.custody.signing import NoteError

    if not texts:
        if quorum is not None:
            raise typer.BadParameter("needs --witness keys to count", param_hint="--quorum")
        return None
    witnesses = []
    for text in texts:
        try:
            witnesses.append(parse_witness_verifier(text))
        except NoteError as exc:
            raise typer.BadParameter(f"{exc} ({shown(text, 60)})", param_hint="--witness") from None
    try:
        return WitnessPolicy(tuple(witnesses), len(witnesses) if quorum is None else quorum)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--quorum") from None


def _pinned(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        with path.open("rb") as handle:
            body = handle.read(_PINNED_MAX_BYTES + 1)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--since"
        ) from None
    if len(body) > _PINNED_MAX_BYTES or b"\n\n" not in body:
        raise typer.BadParameter(
            f"{path} is not a checkpoint (write one with --save-checkpoint)", param_hint="--since"
        )
    return body


def _save(path: Path, note: bytes) -> None:
    from tenios_io.files import atomic_text_file

    try:
        with atomic_text_file(path) as out:
            out.write(note.decode("utf-8"))
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {path}: {exc.strerror}", param_hint="--save-checkpoint"
        ) from None


def _bucket_store(ctx: typer.Context, bucket: str | None, prefix: str | None) -> ArchiveStore:
    """A read-only view of the bucket: flags first, else TENIOS_S3_BUCKET / TENIOS_S3_PREFIX."""
    from tenios_io.store import ArchiveStore, make_s3_client
    from tenios_io.store.keys import validate_prefix

    if bucket is None or prefix is None:
        cfg = settings(ctx)
        bucket = bucket or cfg.require_bucket()
        prefix = cfg.s3_prefix if prefix is None else prefix
    try:
        prefix = validate_prefix(prefix.strip("/"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prefix") from None
    return ArchiveStore(make_s3_client(), bucket, prefix=prefix, retention_mode="none")


def verify_bucket(
    ctx: typer.Context,
    key: KeyOption,
    deep: Annotated[
        bool,
        typer.Option(
            help="Also download every archived object and re-hash its bytes (and the "
            "current version's, where that is another)."
        ),
    ] = False,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            metavar="WITNESS_KEY",
            help="A witness's verifier key (as `witness keygen` printed it); repeatable. "
            "The newest checkpoint must carry --quorum of their cosignatures.",
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            min=1, help="How many of the --witness keys must cosign (default: all of them)."
        ),
    ] = None,
    since: Annotated[
        Path | None,
        typer.Option(
            metavar="CHECKPOINT_FILE",
            help="A checkpoint you kept (--save-checkpoint of an earlier verification): "
            "the log must extend it.",
            dir_okay=False,
        ),
    ] = None,
    save_checkpoint: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="When every check passes, write the newest checkpoint (with its "
            "cosignatures) here, for --since next time.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Verify the archive from the bucket and the verifier key alone (no database).

    Checks every checkpoint's signature, that each extends the one before, that the
    tiles and entry bundles hash to the signed roots, that every archived object the
    log names is there with the logged SHA-256 and size, that every custody manifest's
    recordings and events agree with the log, and that every object version under the
    prefix is accounted for (the archived one current, no other version, no delete
    marker; custody objects written once).  With --witness, that the newest checkpoint
    is witnessed; with --since, that the log extends the checkpoint you kept.  Exit 0
    when all holds, 1 with a table of findings.
    """
    from rich.table import Table

    from tenios_io.cli.audit import _progress
    from tenios_io.custody.verify import verify_bucket as run_verify

    verifier = _verifier(key)
    policy = _policy(witness or [], quorum)
    pinned = _pinned(since)
    store = _bucket_store(ctx, bucket, prefix)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def tick(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        report = run_verify(store, verifier, deep=deep, progress=tick, policy=policy, since=pinned)
    where = f"s3://{store.bucket}/{store.prefix}"
    console.print(
        f"{where}: {len(report.checkpoints)} checkpoint(s) signed by {verifier.name}"
        + "".join(
            f", then by {shown(r.new.name)}+{r.new.hash.hex()} (key rotated at event {r.seq})"
            for r in report.rotations
        )
        + ", "
        f"tree of {report.tree_size:,} events, {report.objects_checked:,} archived object(s) "
        f"checked ({'bytes re-hashed' if deep else 'metadata'}), "
        f"{report.manifests_checked:,} custody manifest(s) of {report.manifest_lines:,} "
        f"line(s) checked against the log, {report.objects_listed:,} object(s) listed "
        f"({report.versions_listed:,} version(s) and delete marker(s))",
        soft_wrap=True,
    )
    if report.unsigned_era:
        era = report.unsigned_era
        console.print(
            f"history: {len(era)} UNSIGNED checkpoint(s) (sizes {era[0].size:,} to "
            f"{era[-1].size:,}) from before the archive had its signing key; their roots "
            f"match the tree, and the signed checkpoint(s) from size "
            f"{report.checkpoints[0].size:,} cover every event since the first",
            soft_wrap=True,
            markup=False,
        )
    if report.witness is not None:
        console.print(f"newest checkpoint: {report.witness.describe()}", soft_wrap=True)
        older = [size for size in report.unwitnessed if size != report.tree_size]
        if older:
            shown_sizes = ", ".join(f"{size:,}" for size in older[-10:])
            console.print(
                f"{len(older)} older checkpoint(s) not witnessed (sizes {shown_sizes}"
                f"{', …' if len(older) > 10 else ''}): later ones are, which covers them",
                soft_wrap=True,
            )
    if since is not None and report.ok:
        console.print(f"the log extends the checkpoint pinned in {since}", soft_wrap=True)
    if report.ok:
        if save_checkpoint is not None and report.newest_note is not None:
            _save(save_checkpoint, report.newest_note)
            console.print(
                f"newest checkpoint (size {report.tree_size:,}) saved to {save_checkpoint}: "
                "pass it as --since next time",
                soft_wrap=True,
            )
        console.print("custody log OK: every check passed", soft_wrap=True)
        return
    if save_checkpoint is not None:
        err_console.print(f"{save_checkpoint} not written: the log did not verify")
    table = Table(title=f"findings ({len(report.findings)})")
    for column in ("check", "object", "finding"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        table.add_row(finding.check, shown(finding.subject), shown(finding.detail))
    console.print(table)
    err_console.print("[bold red]custody log verification FAILED[/]", soft_wrap=True)
    raise typer.Exit(1)


def prove(
    ctx: typer.Context,
    recording_uuid: Annotated[str, typer.Argument(metavar="UUID", help="The recording.")],
    output: Annotated[
        Path,
        typer.Option(
            metavar="DIR",
            help="A new (or empty) folder for the proofs: one C2SP tlog-proof file "
            "leaf-<index>-<event>.tlog-proof per custody event of the recording.",
            file_okay=False,
        ),
    ],
) -> None:
    """Write the recording's C2SP tlog-proofs: anyone can check them offline.

    One file per custody event of the recording, in the folder --output: the event
    itself (the proof's extra line: the log entry), its leaf index, its inclusion proof
    and the latest checkpoint of the custody log, verbatim with the log's signature and
    the witnesses' cosignatures.  Check them with `audit check-proof DIR --key KEY`.
    """
    from tenios_io.audit import open_audit
    from tenios_io.audit.prove import build_proofs, write_proofs
    from tenios_io.cli._common import cli_actor

    with open_audit(settings(ctx), actor=cli_actor("audit-prove")) as audit:
        proofs = build_proofs(audit.ledger, audit.require_store(), recording_uuid.lower())
    with _writing(output, "exists and is not an empty folder; choose a new folder"):
        write_proofs(proofs, output)
    leaves = ", ".join(str(e.proof.index) for e in proofs.events)
    console.print(
        f"{output}: {len(proofs.events)} tlog-proof(s) of {proofs.recording_uuid} "
        f"(leaves {leaves or 'none'}) against the checkpoint of {proofs.tree_size:,} events",
        soft_wrap=True,
    )
    if proofs.not_logged_yet:
        err_console.print(
            f"[yellow]note:[/] {proofs.not_logged_yet} newer event(s) are not in the log yet "
            "(the next run's checkpoint, or `tenios-archive audit checkpoint`, adds them)",
            soft_wrap=True,
        )


def _read_proofs(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of a folder's ``*.tlog-proof`` files, or of one file."""
    from tenios_io.custody.tlogproof import EXTENSION, MAX_PROOF_BYTES

    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.name.endswith(EXTENSION))
            if not files:
                raise typer.BadParameter(f"{path} holds no *{EXTENSION} file", param_hint="FILE")
        else:
            files = [path]
        proofs = []
        for file in files:
            if file.stat().st_size > MAX_PROOF_BYTES:
                raise typer.BadParameter(f"{file} is too large for a proof", param_hint="FILE")
            proofs.append((file.name, file.read_bytes()))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="FILE") from None
    return proofs


def _witness_policy(witness: list[str], quorum: int | None) -> WitnessPolicy | None:
    """The k-of-n policy of --witness keys and --quorum (default: all of them)."""
    from tenios_io.custody import signing
    from tenios_io.custody.cosignature import WitnessPolicy, parse_witness_verifier

    if not witness:
        if quorum is not None:
            raise typer.BadParameter("--quorum needs --witness keys", param_hint="--quorum")
        return None
    try:
        keys = tuple(parse_witness_verifier(text) for text in witness)
    except signing.NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--witness") from None
    try:
        return WitnessPolicy(keys, len(keys) if quorum is None else quorum)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--quorum") from None


def check_proof(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE|DIR",
            help="The folder `audit prove` wrote, one .tlog-proof file, or an evidence "
            "bundle (JSON) of earlier versions.",
        ),
    ],
    key: Annotated[
        list[str],
        typer.Option(
            "--key",
            metavar="LOG_KEY",
            help="The archive's verifier key NAME+HASH+KEY (as `audit keygen` printed it); "
            "after a key rotation give the old and the new key.",
        ),
    ],
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            metavar="WITNESS_KEY",
            help="A witness's verifier key (as `witness keygen` printed it); repeatable.",
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            min=0, metavar="K", help="Cosignatures of the --witness keys needed (default: all)."
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            help="The log's origin the checkpoints must name (default: the key's name when "
            "it is an origin tenios-archive/BUCKET/PREFIX, else any origin the key signed)."
        ),
    ] = None,
    object_: Annotated[
        Path | None,
        typer.Option(
            "--object",
            metavar="PATH",
            help="A downloaded copy of the recording: its bytes must hash to the logged SHA-256.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Verify a recording's tlog-proofs offline: no bucket, no database.

    Each proof's event must be in a checkpoint signed by --key (for the log's origin),
    cosigned by --quorum of the --witness keys, with an inclusion proof that binds the
    event to the signed root.  Prints what was proven: the events, when the recording
    was archived, its key, version, SHA-256 and size, and its retention.  Exit 0 when
    every proof (and --object's bytes) verifies; 1 naming each failed proof and the
    step it failed at; 2 for usage errors.
    """
    from tenios_io.custody.proof import check_proof as run_legacy
    from tenios_io.custody.proof import check_proofs
    from tenios_io.custody.tlogproof import ProofKeys

    verifiers = [_verifier(text) for text in key]
    policy = _witness_policy(witness or [], quorum)
    if object_ is not None and not object_.is_file():
        raise typer.BadParameter(f"{object_} is not a file", param_hint="--object")
    proofs = _read_proofs(file)
    if len(proofs) == 1 and proofs[0][1].lstrip().startswith(b"{"):
        if policy is not None or len(verifiers) > 1:
            raise typer.BadParameter(
                f"{file} is an evidence bundle of an earlier version: it carries no witness "
                "cosignatures and needs one --key; run `audit prove` again for tlog-proofs",
                param_hint="--witness",
            )
        legacy = run_legacy(proofs[0][1], verifiers[0], recording=object_)
        _print_legacy(legacy, verifiers[0].name)
        return
    if origin is None and verifiers[0].name.startswith("tenios-archive/"):
        origin = verifiers[0].name
    result = check_proofs(proofs, ProofKeys(verifiers, origin, policy), recording=object_)
    for name, failure in result.failed:
        err_console.print(
            f"[bold red]proof FAILED[/] {shown(name)} at step {failure.step}: "
            f"{shown(failure.detail)}",
            soft_wrap=True,
        )
    for problem in result.problems:
        err_console.print(f"[bold red]proof problem:[/] {shown(problem)}", soft_wrap=True)
    _print_proven(result)
    if not result.ok:
        err_console.print("[bold red]proof does NOT verify[/]", soft_wrap=True)
        raise typer.Exit(1)


def _print_proven(result: ProofsCheck) -> None:
    """What the verified proofs say, one fact a line."""
    newest = result.newest
    if newest is None:
        return
    by_key = sorted({p.log_key.name for _, p in result.proven})
    events = [p for _, p in result.proven]
    state = "proof OK" if result.ok else "verified"
    console.print(
        f"{state}: {len(events)} event(s) of {', '.join(result.recordings)} are in the custody "
        f"log {shown(newest.checkpoint.origin)} of {newest.checkpoint.size:,} events signed by "
        f"{', '.join(shown(n) for n in by_key)} (leaves "
        f"{', '.join(str(p.index) for p in events)}: "
        f"{', '.join(shown(str(p.event['event'])) for p in events)})",
        soft_wrap=True,
    )
    if newest.witnesses is not None:
        cosigned = sorted(newest.witnesses.witnessed.items())
        stamps = ", ".join(f"{shown(name)} at {_utc(stamp)}" for name, stamp in cosigned)
        console.print(
            f"witnessed: {newest.witnesses.describe()}" + (f"; {stamps}" if stamps else ""),
            soft_wrap=True,
        )
    archived = result.archived
    if archived is None:
        console.print("no proven `archived` event: the proofs do not say it was archived")
        return
    d = archived.details
    retention = (
        f"retention {shown(str(d.get('retention_mode')))} until {shown(str(d.get('retain_until')))}"
        if d.get("retention_mode") not in (None, "", "none")
        else "no retention (Object Lock not applied)"
    )
    console.print(
        f"archived at {shown(str(archived.event['occurred_at']))} as "
        f"s3://{shown(str(d.get('s3_bucket')))}/{shown(str(d.get('s3_key')))} (version "
        f"{shown(str(d.get('s3_version_id')))}), SHA-256 {shown(str(d.get('sha256')))}, "
        f"{d.get('size_bytes')} bytes; {retention}"
        + ("; the given file's bytes match" if result.object_checked and result.ok else ""),
        soft_wrap=True,
    )


def _utc(stamp: int) -> str:
    from datetime import UTC, datetime

    try:
        return f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S} UTC"
    except (OverflowError, OSError, ValueError):
        return str(stamp)


def _print_legacy(result: ProofCheck, signer: str) -> None:
    if result.ok:
        archived = result.archived or {}
        console.print(
            f"proof OK: {result.events} event(s) of {result.recording_uuid} are in the custody "
            f"log of {result.tree_size:,} events signed by {signer}; archived as "
            f"{archived.get('s3_key')} (version {archived.get('s3_version_id')}), SHA-256 "
            f"{archived.get('sha256')}, {archived.get('size_bytes')} bytes, retention "
            f"{archived.get('retention_mode')} until {archived.get('retain_until')}"
            + ("; the given file's bytes match" if result.object_checked else ""),
            soft_wrap=True,
        )
        return
    for problem in result.problems:
        err_console.print(f"[bold red]proof problem:[/] {problem}", soft_wrap=True)
    err_console.print("[bold red]proof does NOT verify[/]", soft_wrap=True)
    raise typer.Exit(1)


def restore(
    ctx: typer.Context,
    from_bucket: Annotated[
        bool,
        typer.Option(
            "--from-bucket", help="Rebuild from the custody log in TENIOS_S3_BUCKET (required)."
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="VERIFIER_KEY",
            help="The verifier key the log must be signed with (default: the public half of "
            "TENIOS_CUSTODY_KEY_FILE).",
        ),
    ] = None,
) -> None:
    """Rebuild an empty ledger from the custody log in the bucket (after losing the database).

    Restores every event of the signed log — the chain is recomputed byte for byte —
    and the recordings' rows as their events describe them.  The database must be
    migrated (`db upgrade`) and empty.  Events written after the log's latest
    checkpoint were never in the bucket and cannot come back.
    """
    from tenios_io.cli.audit import _progress
    from tenios_io.ledger import open_ledger
    from tenios_io.publish.log import load_signer
    from tenios_io.publish.restore import restore_from_bucket
    from tenios_io.store import ArchiveStore, make_s3_client

    if not from_bucket:
        raise typer.BadParameter(
            "only --from-bucket is supported; add it", param_hint="--from-bucket"
        )
    cfg = settings(ctx)
    if key is not None:
        verifier = _verifier(key)
    else:
        signer = load_signer(cfg.custody_key_file)
        if signer is None:
            raise typer.BadParameter(
                "give the archive's verifier key, or set TENIOS_CUSTODY_KEY_FILE",
                param_hint="--key",
            )
        verifier = signer.verifier
    store = ArchiveStore.from_settings(cfg, make_s3_client())

    with open_ledger(cfg) as ledger, _progress() as progress:
        task = progress.add_task("restoring events", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        restored = restore_from_bucket(ledger.engine, store, verifier, progress=tick)
    console.print(
        f"restored {restored.counts.events:,} custody events and {restored.counts.recordings:,} "
        f"recordings from the log checkpoint of {restored.checkpoint.size:,} events signed by "
        f"{verifier.name}; chain head {restored.counts.head_hash}",
        soft_wrap=True,
    )
    if restored.ledger_id is not None:
        console.print(f"ledger id {restored.ledger_id} (the bucket's) adopted", soft_wrap=True)
    console.print(
        "next: `tenios-archive audit verify-chain` and `tenios-archive audit verify --all`",
        soft_wrap=True,
        style="dim",
    )


def register(app: typer.Typer) -> None:
    """Add the custody log's commands to the ``audit`` group."""
    app.command()(keygen)
    app.command("rotate-key")(rotate_key)
    app.command("verify-bucket")(verify_bucket)
    app.command()(prove)
    app.command("check-proof")(check_proof)
    from tenios_io.cli import evidence

    evidence.register(app)


def register_ledger(app: typer.Typer) -> None:
    """Add ``ledger restore --from-bucket`` to the ``ledger`` group."""
    app.command()(restore)
