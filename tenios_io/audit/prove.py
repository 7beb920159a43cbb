"""`audit prove`: a recording's evidence bundle, built from the ledger and the bucket's
custody log.  Its format and the offline check are :mod:`tenios_io.custody.proof`."""

from __future__ import annotations

import base64
from typing import Any

from tenios_io.custody import merkle
from tenios_io.custody.checkpoints import CheckpointError, open_checkpoint
from tenios_io.custody.layout import LATEST, event_entry, log_prefix
from tenios_io.custody.proof import FORMAT, Evidence
from tenios_io.custody.times import iso
from tenios_io.custody.tree import LogFiles, tree_reader
from tenios_io.exceptions import VerificationFailed
from tenios_io.ledger import Ledger
from tenios_io.store import ArchiveStore


def build_proof(ledger: Ledger, store: ArchiveStore, recording_uuid: str) -> Evidence:
    """The evidence bundle of one recording against the latest checkpoint in the bucket.

    VerificationFailed when the bucket has no log yet, or when the bucket's log and
    the ledger disagree about one of the recording's events.
    """
    rec = ledger.get(recording_uuid)  # RecordingNotFound names the uuid
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
    events: list[dict[str, Any]] = []
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
        proof = merkle.inclusion_proof(reader, index, checkpoint.size)
        events.append(
            {
                "leaf_index": index,
                "entry": entry.decode("utf-8"),
                "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
            }
        )
    document = {
        "format": FORMAT,
        "recording_uuid": recording_uuid,
        "checkpoint": note.decode("utf-8"),
        "events": events,
        "object": {
            "bucket": rec.s3_bucket,
            "key": rec.s3_key,
            "version_id": rec.s3_version_id,
            "sha256": rec.sha256,
            "size": rec.size_bytes,
            "retention_mode": rec.retention_mode,
            "retain_until": iso(rec.retain_until),
        },
    }
    return Evidence(document, checkpoint.size, later)
