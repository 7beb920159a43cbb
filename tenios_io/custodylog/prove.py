"""Evidence for one recording that anyone can check offline: `audit prove` / `audit check-proof`.

A proof bundle is one JSON file::

    {"format": "tenios-archive custody proof v1",
     "recording_uuid": "…",
     "checkpoint": "<the latest signed checkpoint note, verbatim>",
     "events": [{"leaf_index": i, "entry": "<the log entry: canonical JSON>",
                 "inclusion_proof": ["<base64 hash>", …]}, …],
     "object": {"bucket", "key", "version_id", "sha256", "size", "retention_mode",
                "retain_until"}}

Checking it needs only the verifier key: the checkpoint's signature, each entry's
inclusion in the signed tree (RFC 6962), that the entries are this recording's
events, and that the object facts are those its logged ``archived`` event states
(and, given the downloaded recording, that its bytes hash to them).  Every field is
checked, so no byte of a bundle can change without the check failing (tested).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenios_io import signing
from tenios_io.audit.times import iso
from tenios_io.custodylog.checkpoints import CheckpointError, open_checkpoint
from tenios_io.custodylog.layout import LATEST, event_entry, log_prefix, parse_entry
from tenios_io.custodylog.tree import LogFiles, tree_reader
from tenios_io.exceptions import VerificationFailed
from tenios_io.ledger import Ledger, merkle
from tenios_io.store import ArchiveStore

FORMAT = "tenios-archive custody proof v1"
_OBJECT_FIELDS = ("bucket", "key", "version_id", "sha256", "size", "retention_mode", "retain_until")


@dataclass(frozen=True)
class Evidence:
    """A proof bundle and what could not go into it."""

    document: dict[str, Any]
    tree_size: int
    not_logged_yet: int
    """Events of the recording integrated after the latest checkpoint."""


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


@dataclass
class ProofCheck:
    """What :func:`check_proof` found."""

    recording_uuid: str = ""
    tree_size: int = 0
    events: int = 0
    archived: dict[str, Any] | None = None
    """The details of the recording's last proven ``archived`` event."""
    object_checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_proof(
    body: bytes, verifier: signing.Verifier, *, recording: Path | None = None
) -> ProofCheck:
    """Verify a proof bundle offline; problems are listed, never raised."""
    result = ProofCheck()
    try:
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT!r} document")
        if set(document) != {"format", "recording_uuid", "checkpoint", "events", "object"}:
            raise ValueError("unexpected or missing top-level fields")
        result.recording_uuid = str(document["recording_uuid"])
        checkpoint = open_checkpoint(str(document["checkpoint"]).encode("utf-8"), verifier)
        result.tree_size = checkpoint.size
        events = list(document["events"])
        claimed = dict(document["object"])
    except (ValueError, KeyError, TypeError, UnicodeError, CheckpointError) as exc:
        result.problems.append(f"not a valid proof bundle ({exc})")
        return result
    for number, item in enumerate(events, start=1):
        try:
            if set(item) != {"leaf_index", "entry", "inclusion_proof"}:
                raise ValueError("unexpected or missing fields")
            index = int(item["leaf_index"])
            entry = str(item["entry"]).encode("utf-8")
            proof = [signing.b64decode_strict(h) for h in item["inclusion_proof"]]
            merkle.verify_inclusion(
                merkle.leaf_hash(entry), index, checkpoint.size, proof, checkpoint.root
            )
            event = parse_entry(entry)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            result.problems.append(f"event {number} of the bundle does not verify: {exc}")
            continue
        if event["recording_uuid"] != result.recording_uuid or event["seq"] != index + 1:
            result.problems.append(f"leaf {index} is not an event of {result.recording_uuid}")
            continue
        result.events += 1
        if event["event"] == "archived":
            result.archived = event["details"]
    if not events:
        result.problems.append("the bundle proves no event")
    archived = result.archived
    if archived is None:
        result.problems.append("no proven `archived` event: the log does not say it was archived")
        return result
    if set(claimed) != set(_OBJECT_FIELDS):
        result.problems.append(f"object fields {sorted(claimed)} are not {sorted(_OBJECT_FIELDS)}")
    for name, logged in (
        ("bucket", archived.get("s3_bucket")),
        ("retention_mode", archived.get("retention_mode")),
        ("retain_until", archived.get("retain_until")),
        ("key", archived.get("s3_key")),
        ("version_id", archived.get("s3_version_id")),
        ("sha256", archived.get("sha256")),
        ("size", archived.get("size_bytes")),
    ):
        if claimed.get(name) != logged:
            result.problems.append(
                f"object {name} {claimed.get(name)!r} is not the logged {logged!r}"
            )
    if recording is not None:
        digest, size = _hash_file(recording)
        result.object_checked = True
        if (digest, size) != (archived.get("sha256"), archived.get("size_bytes")):
            result.problems.append(
                f"{recording} hashes to {digest} ({size} bytes); the log says "
                f"{archived.get('sha256')} ({archived.get('size_bytes')} bytes)"
            )
    return result


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
