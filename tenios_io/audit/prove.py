"""`audit prove`: a recording's C2SP tlog-proofs, one per custody event, built from the
ledger and the bucket's custody log.  The format and the offline check are
:mod:`tenios_io.custody.tlogproof`; :func:`write_proofs` writes them as one folder."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tenios_io.custody import merkle
from tenios_io.custody.checkpoints import CheckpointError, LogCheckpoint, open_checkpoint
from tenios_io.custody.layout import LATEST, event_entry, log_prefix
from tenios_io.custody.tlogproof import EXTENSION, TlogProof, format_proof
from tenios_io.custody.tree import LogFiles, tree_reader
from tenios_io.exceptions import VerificationFailed
from tenios_io.ledger import Ledger
from tenios_io.store import ArchiveStore


@dataclass(frozen=True)
class EventProof:
    """The tlog-proof of one custody event of the recording."""

    seq: int
    event: str
    proof: TlogProof

    @property
    def file_name(self) -> str:
        """``leaf-<index, 20 digits>-<event>.tlog-proof``: sorted as the log is."""
        event = re.sub(r"[^a-z0-9_]", "_", self.event.lower())[:40]
        return f"leaf-{self.proof.index:020d}-{event}{EXTENSION}"


@dataclass(frozen=True)
class Proofs:
    """A recording's proofs against the bucket's latest checkpoint."""

    recording_uuid: str
    tree_size: int
    events: list[EventProof]
    not_logged_yet: int
    """Events of the recording integrated after the latest checkpoint."""


def latest_log(
    store: ArchiveStore,
) -> tuple[LogFiles, bytes, LogCheckpoint, merkle.NodeReader]:
    """The bucket's custody log at its latest checkpoint, its tiles checked against the
    checkpoint's root; VerificationFailed (naming what to run) when there is none or it
    does not verify."""
    files = LogFiles(store, log_prefix(store.prefix))
    note = files.read(LATEST)
    if note is None:
        raise VerificationFailed(
            f"s3://{store.bucket}/{files.key(LATEST)} does not exist: no custody log yet "
            "(run `tenios-archive audit checkpoint`)",
            s3_key=files.key(LATEST),
        )
    try:
        checkpoint = open_checkpoint(note, None)
        reader = tree_reader(files, checkpoint.size)
        if merkle.root_hash(reader, checkpoint.size) != checkpoint.root:
            raise merkle.ProofError("the tiles do not hash to the latest checkpoint's root")
    except (CheckpointError, merkle.ProofError) as exc:
        raise VerificationFailed(
            f"the custody log in s3://{store.bucket}/{files.prefix} does not verify ({exc}); "
            "run `tenios-archive audit verify-bucket`",
            s3_key=files.key(LATEST),
        ) from None
    return files, note, checkpoint, reader


def build_proofs(ledger: Ledger, store: ArchiveStore, recording_uuid: str) -> Proofs:
    """The tlog-proof of each of the recording's events the latest checkpoint covers.

    VerificationFailed when the bucket has no log yet, or when the bucket's log and
    the ledger disagree about one of the recording's events.
    """
    ledger.get(recording_uuid)  # RecordingNotFound names the uuid
    files, note, checkpoint, reader = latest_log(store)
    proofs: list[EventProof] = []
    later = 0
    bundles: dict[int, list[bytes]] = {}
    for row in ledger.events(recording_uuid):
        index = int(row["seq"]) - 1
        if index >= checkpoint.size:
            later += 1
            continue
        tile = index // merkle.TILE_WIDTH
        if tile not in bundles:
            width = min(merkle.TILE_WIDTH, checkpoint.size - tile * merkle.TILE_WIDTH)
            bundles[tile] = files.bundle(tile, width)
        entry = bundles[tile][index % merkle.TILE_WIDTH]
        if entry != event_entry(row):
            raise VerificationFailed(
                f"the custody log's leaf {index} is not the ledger's event {row['seq']} "
                "(run `tenios-archive audit verify-bucket`)",
                s3_key=files.key(merkle.entries_path(tile)),
            )
        hashes = tuple(merkle.inclusion_proof(reader, index, checkpoint.size))
        proof = TlogProof(index=index, hashes=hashes, checkpoint=note, extra=entry)
        proofs.append(EventProof(int(row["seq"]), str(row["event"]), proof))
    return Proofs(recording_uuid, checkpoint.size, proofs, later)


def write_proofs(proofs: Proofs, folder: Path) -> list[Path]:
    """Write one ``.tlog-proof`` file per event into the new folder ``folder``.

    The files are written into a temporary folder beside it that is renamed into
    place at the end, so a failure leaves nothing half-written.  FileExistsError
    when ``folder`` exists and is not an empty folder.
    """
    if folder.exists() and not (folder.is_dir() and not any(folder.iterdir())):
        raise FileExistsError(folder)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for item in proofs.events:
            (work / item.file_name).write_bytes(format_proof(item.proof))
        os.replace(work, folder)  # onto a missing or empty folder: atomic on POSIX
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return [folder / item.file_name for item in proofs.events]
