"""`ledger restore --from-bucket`: rebuild the ledger from the custody log in the bucket.

Only a log whose latest checkpoint is signed by the given key is restored, and the
entry bundles are re-hashed into the tree while they are read: unless they hash to
the signed root, the restore's transaction is rolled back and the ledger stays empty.
The restored ledger adopts the ledger id the bucket keeps (``tenios_io.publish.identity``):
it is the same ledger, and archives on into the same bucket prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import CheckpointError, LogCheckpoint, open_checkpoint
from tenios_io.custody.layout import LATEST, log_prefix, parse_entry
from tenios_io.custody.tree import LogFiles, TreeEdge
from tenios_io.exceptions import VerificationFailed
from tenios_io.ledger.restore import RestoreCounts, restore_events
from tenios_io.publish.identity import read_bucket_ledger_id
from tenios_io.store import ArchiveStore


@dataclass(frozen=True)
class Restored:
    """What was restored, from which checkpoint."""

    checkpoint: LogCheckpoint
    counts: RestoreCounts
    ledger_id: str | None
    """The bucket's ledger id, adopted by the restored ledger (None: the bucket, from an
    earlier version, has none; the restored ledger keeps its own and the next run
    writes it into the bucket)."""


def restore_from_bucket(
    engine: Engine,
    store: ArchiveStore,
    verifier: signing.Verifier,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Restored:
    """Restore every event of the bucket's signed log into the empty ledger ``engine``.

    VerificationFailed when the log is missing, not signed by ``verifier`` or does not
    hash to its signed root (nothing is restored then); LedgerNotEmpty when the ledger
    already holds data.
    """
    files = LogFiles(store, log_prefix(store.prefix))
    key = files.key(LATEST)
    note = files.read(LATEST)
    if note is None:
        raise VerificationFailed(f"s3://{store.bucket}/{key}: no custody log to restore from")
    try:
        checkpoint = open_checkpoint(note, verifier)
    except CheckpointError as exc:
        raise VerificationFailed(f"s3://{store.bucket}/{key}: {exc}", s3_key=key) from None

    def events() -> Iterator[dict[str, Any]]:
        edge = TreeEdge()
        width = merkle.TILE_WIDTH
        try:
            for index in range((checkpoint.size + width - 1) // width):
                for entry in files.bundle(index, min(width, checkpoint.size - index * width)):
                    event = parse_entry(entry)
                    if event["seq"] != edge.size + 1:
                        raise ValueError(f"leaf {edge.size} carries sequence {event['seq']}")
                    edge.append(entry, lambda _path, _body: None)
                    yield event
                if progress is not None:
                    progress(edge.size, checkpoint.size)
        except (merkle.ProofError, ValueError) as exc:
            raise VerificationFailed(f"the custody log cannot be restored: {exc}") from None
        if edge.root() != checkpoint.root:
            raise VerificationFailed(
                "the entry bundles do not hash to the signed checkpoint's root: the log was "
                "altered; nothing was restored (run `tenios-archive audit verify-bucket`)",
                s3_key=key,
            )

    ledger_id = read_bucket_ledger_id(store)
    counts = restore_events(engine, events(), ledger_id=ledger_id)
    return Restored(checkpoint, counts, ledger_id)
