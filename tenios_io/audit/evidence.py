"""`audit evidence`: a recording's evidence package — its bytes, what S3 says about them
now, its ledger row and custody events, a tlog-proof per event against a fresh signed
checkpoint, and a page that re-checks all of it in a browser, offline.

The format and the offline check are :mod:`tenios_io.custody.evidence`; the page is
:mod:`tenios_io.audit.evidence_page`.  Handing bytes to a person is itself logged: the
``exported`` event (who, why, what, its SHA-256, and the leaf indices of every earlier
event of the recording, so the package can be shown complete) is written and published
in a checkpoint *before* the bytes are read, and the package proves that event too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenios_io.audit.prove import latest_log
from tenios_io.config import Settings
from tenios_io.custody import merkle, signing
from tenios_io.custody.chain import NewEvent
from tenios_io.custody.checkpoints import open_checkpoint
from tenios_io.custody.evidence import (
    EMBED_LIMIT,
    FORMAT,
    format_proof,
)
from tenios_io.custody.layout import event_entry
from tenios_io.custody.times import iso
from tenios_io.custody.tlogproof import TlogProof
from tenios_io.exceptions import TeniosArchiveError, UnknownRecording, VerificationFailed
from tenios_io.ledger import Ledger, Recording, State
from tenios_io.publish.checkpoints import write_checkpoint
from tenios_io.publish.witnessing import WitnessSession
from tenios_io.store import ArchiveStore

EXPORTED = "exported"
"""The custody event of every hand-over of a recording's bytes to a person."""

MAX_REASON = 1000
_EXTENSIONS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg"}


class EvidenceRefused(TeniosArchiveError):
    """An export that cannot be made as asked (exit 1, one line)."""


@dataclass(frozen=True)
class Package:
    """One recording's package, written."""

    recording_uuid: str
    folder: Path
    size: int | None
    embedded: bool
    tree_size: int
    export_seq: int


def check_reason(reason: str) -> str:
    """The export's reason, required and bounded (it is logged and printed)."""
    text = " ".join(reason.split())
    if not text:
        raise ValueError("--reason must say why the recording is handed out")
    if len(text) > MAX_REASON:
        raise ValueError(f"--reason is {len(text)} characters; at most {MAX_REASON}")
    return text


def log_export(
    ledger: Ledger,
    recording: Recording,
    *,
    reason: str,
    handed_out: str,
    actor: str,
) -> int:
    """Log one hand-over of ``recording``'s bytes (before they leave); its event's seq."""
    earlier = [int(row["seq"]) - 1 for row in ledger.events(recording.recording_uuid)]
    details: dict[str, Any] = {
        "reason": reason,
        "handed_out": handed_out,
        "sha256": recording.sha256,
        "size_bytes": recording.size_bytes,
        "s3_key": recording.s3_key,
        "s3_version_id": recording.s3_version_id,
        "earlier_events": earlier,
    }
    ledger.append_events([NewEvent(recording.recording_uuid, EXPORTED, details)], actor=actor)
    for row in reversed(ledger.events(recording.recording_uuid)):
        if row["event"] == EXPORTED and row["actor"] == actor:
            return int(row["seq"])
    raise VerificationFailed(  # pragma: no cover - append_events integrates at once
        f"the export of {recording.recording_uuid} was not logged",
        recording_uuid=recording.recording_uuid,
    )


def log_hand_over(
    settings: Settings, recording_uuid: str, *, reason: str | None, handed_out: str, actor: str
) -> int | None:
    """Before bytes of ``recording_uuid`` go to a person by another way than a package
    (`api retrieve`): when the ledger archived it, log the hand-over (``exported``) and
    return its seq.  No ledger yet (a SQLite file that does not exist), or a recording it
    does not know or has not archived: nothing to log, None.  A ledger that cannot be
    read raises: an archived recording's bytes are not handed out unrecorded.
    """
    from sqlalchemy.engine import make_url

    from tenios_io.ledger import open_ledger

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return None
    with open_ledger(settings, actor=actor) as ledger:
        try:
            rec = ledger.get(recording_uuid)
        except UnknownRecording:
            return None
        if rec.state is not State.ARCHIVED:
            return None
        return log_export(
            ledger, rec, reason=reason or "(no reason given)", handed_out=handed_out, actor=actor
        )


def build_packages(
    ledger: Ledger,
    store: ArchiveStore,
    recording_uuids: Sequence[str],
    *,
    reason: str,
    output: Path,
    actor: str,
    signer: signing.Signer | None,
    log_key: signing.Verifier | None,
    witnesses: WitnessSession | None = None,
    force: bool = False,
) -> list[Package]:
    """Write ``output/<uuid>/`` for each recording (each built in a temporary folder
    beside it and renamed into place: never half-written).

    EvidenceRefused (nothing logged, nothing written) for an unknown id, a recording
    that was never archived, or a folder that exists without ``force``; and (the
    exports logged, nothing written) when ``witnesses`` are configured but did not
    cosign the checkpoint that holds the exports: a package must prove what its page
    promises, so it waits for a witnessed checkpoint.
    """
    reason = check_reason(reason)
    uuids = list(dict.fromkeys(u.lower() for u in recording_uuids))
    recordings: list[Recording] = []
    for uuid in uuids:
        try:
            rec = ledger.get(uuid)
        except UnknownRecording:
            raise EvidenceRefused(f"recording {uuid} is not in the ledger") from None
        if rec.state not in (State.ARCHIVED, State.PURGED) or rec.sha256 is None:
            raise EvidenceRefused(
                f"recording {uuid} is {rec.state.value}, not archived: there is nothing to export",
                recording_uuid=uuid,
            )
        if (output / uuid).exists() and not force:
            raise EvidenceRefused(
                f"{output / uuid} already exists: choose another --output or pass --force",
                recording_uuid=uuid,
            )
        recordings.append(rec)
    output.mkdir(parents=True, exist_ok=True)
    exports = {
        rec.recording_uuid: log_export(
            ledger,
            rec,
            reason=reason,
            handed_out="evidence package"
            if rec.state is State.ARCHIVED
            else "evidence package (purged: no recording)",
            actor=actor,
        )
        for rec in recordings
    }
    # The exports are in the log and in a signed checkpoint before any byte is read.
    write_checkpoint(ledger, store, signer=signer, witnesses=witnesses)
    _files, note, latest, reader = latest_log(store)
    size = latest.size
    keys: list[str] = []
    quorum = 0
    if witnesses is not None:
        policy = witnesses.witnesses.policy
        keys, quorum = [str(w) for w in policy.witnesses], policy.quorum
        seen = policy.check(note)
        if not seen.satisfied:
            raise EvidenceRefused(
                f"the checkpoint that holds the export is not yet witnessed ({seen.describe()}): "
                "the export is logged; run `tenios-archive audit evidence` again once the "
                "witnesses answer (`tenios-archive audit checkpoint` submits to them again)"
            )
    verifier = log_key or (signer.verifier if signer is not None else None)
    return [
        _write_package(
            ledger,
            store,
            rec,
            output=output,
            note=note,
            reader=reader,
            size=size,
            export_seq=exports[rec.recording_uuid],
            reason=reason,
            actor=actor,
            verifier=verifier,
            witnesses=keys,
            quorum=quorum,
        )
        for rec in recordings
    ]


def _write_package(
    ledger: Ledger,
    store: ArchiveStore,
    rec: Recording,
    *,
    output: Path,
    note: bytes,
    reader: merkle.NodeReader,
    size: int,
    export_seq: int,
    reason: str,
    actor: str,
    verifier: signing.Verifier | None,
    witnesses: Sequence[str],
    quorum: int,
) -> Package:
    from tenios_io.audit.evidence_page import readme_text, write_page

    uuid = rec.recording_uuid
    target = output / uuid
    work = Path(tempfile.mkdtemp(prefix=f".{uuid}.", dir=output))
    try:
        (work / "proofs").mkdir()
        events: list[dict[str, Any]] = []
        proofs: dict[str, str] = {}
        for row in ledger.events(uuid):
            index = int(row["seq"]) - 1
            if index >= size:
                continue  # logged after this checkpoint (another export since): not proved here
            entry = event_entry(row)
            proof = TlogProof(
                index, tuple(merkle.inclusion_proof(reader, index, size)), note, extra=entry
            )
            if merkle.leaf_hash(entry) != merkle.range_hash(reader, index, index + 1):
                raise VerificationFailed(
                    f"the custody log's leaf {index} is not the ledger's event {index + 1} "
                    "(run `tenios-archive audit verify-bucket`)",
                    recording_uuid=uuid,
                )
            text = format_proof(proof)
            (work / "proofs" / f"{index}.tlog-proof").write_text(text, encoding="utf-8")
            proofs[str(index)] = text
            events.append({"leaf_index": index, "entry": entry.decode("utf-8")})
        if export_seq - 1 >= size:
            raise VerificationFailed(  # pragma: no cover - the checkpoint was written after it
                f"the export of {uuid} is not in the newest checkpoint", recording_uuid=uuid
            )
        s3 = _s3_facts(store, rec)
        recording_file: str | None = None
        if rec.state is State.ARCHIVED:
            recording_file = f"{uuid}.{_EXTENSIONS.get(rec.content_type or '', 'bin')}"
            digest, nbytes = _download(store, rec, work / recording_file)
            if (digest, nbytes) != (rec.sha256, rec.size_bytes):
                raise VerificationFailed(
                    f"s3://{store.bucket}/{rec.s3_key} (version {rec.s3_version_id}) hashes to "
                    f"{digest} ({nbytes} bytes), not the archived {rec.sha256} "
                    f"({rec.size_bytes} bytes): run `tenios-archive audit verify-bucket --deep`",
                    recording_uuid=uuid,
                    s3_key=rec.s3_key,
                )
        document: dict[str, Any] = {
            "format": FORMAT,
            "recording_uuid": uuid,
            "exported": {
                "seq": export_seq,
                "actor": actor,
                "reason": reason,
                "at": iso(ledger.now()),
            },
            "recording_file": recording_file,
            "purged": rec.state is State.PURGED,
            "s3": s3,
            "ledger": _ledger_row(rec),
            "log": {
                "origin": open_checkpoint(note, None).origin,
                "key": str(verifier) if verifier is not None else None,
                "witnesses": list(witnesses),
                "quorum": quorum,
                "checkpoint": note.decode("utf-8"),
            },
            "events": events,
        }
        (work / "evidence.json").write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        with (work / "verify.html").open("w", encoding="utf-8") as page:
            write_page(page, document, proofs, work / recording_file if recording_file else None)
        (work / "README.txt").write_text(readme_text(document), encoding="utf-8")
        _fsync_tree(work)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    embedded = recording_file is not None and (rec.size_bytes or 0) <= EMBED_LIMIT
    return Package(
        uuid, target, rec.size_bytes if recording_file else None, embedded, size, export_seq
    )


def _s3_facts(store: ArchiveStore, rec: Recording) -> dict[str, Any] | None:
    """What S3 says about the logged version now (not what the ledger remembers)."""
    if rec.s3_key is None:
        return None
    head = store.head(rec.s3_key, rec.s3_version_id)
    if head is None:
        return {
            "bucket": store.bucket,
            "key": rec.s3_key,
            "version_id": rec.s3_version_id,
            "exists": False,
        }
    return {
        "bucket": store.bucket,
        "key": head.key,
        "version_id": head.version_id,
        "exists": True,
        "size": head.size,
        "sha256": head.sha256,
        "checksum_sha256": head.checksum_sha256,
        "last_modified": iso(head.last_modified),
        "object_lock_mode": head.lock_mode.upper() if head.lock_mode else None,
        "retain_until": iso(head.retain_until),
        "legal_hold": head.legal_hold,
    }


def _ledger_row(rec: Recording) -> dict[str, Any]:
    return {
        "recording_uuid": rec.recording_uuid,
        "call_uuid": rec.call_uuid,
        "state": rec.state.value,
        "source": rec.source,
        "recorded_at": iso(rec.recorded_at),
        "archived_at": iso(rec.archived_at),
        "content_type": rec.content_type,
        "size_bytes": rec.size_bytes,
        "sha256": rec.sha256,
        "codec": rec.codec,
        "channels": rec.channels,
        "sample_rate": rec.sample_rate,
        "duration_seconds": rec.duration_seconds,
        "s3_bucket": rec.s3_bucket,
        "s3_key": rec.s3_key,
        "s3_version_id": rec.s3_version_id,
        "retention_mode": rec.retention_mode,
        "retain_until": iso(rec.retain_until),
        "legal_hold": rec.legal_hold,
        "last_verified_at": iso(rec.last_verified_at),
    }


class _HashingFile:
    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._file.write(data)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def _download(store: ArchiveStore, rec: Recording, path: Path) -> tuple[str, int]:
    """Stream the logged version to ``path`` (1 MiB at a time), hashing as it goes."""
    assert rec.s3_key is not None
    sink = _HashingFile(path)
    try:
        store.download(rec.s3_key, sink, version_id=rec.s3_version_id)  # type: ignore[arg-type]
    finally:
        sink.close()
    return sink.digest.hexdigest(), sink.size


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def write_zip(folders: Sequence[Path], zip_path: Path) -> None:
    """The packages as one zip (each folder under its recording's uuid), written to a
    temporary file beside ``zip_path`` and renamed: never half-written."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{zip_path.name}.", dir=zip_path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for folder in folders:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
        os.replace(temp, zip_path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
