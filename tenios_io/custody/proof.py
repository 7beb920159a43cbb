"""Evidence for one recording that anyone can check offline: `audit check-proof`.

:func:`check_proofs` checks C2SP tlog-proofs (:mod:`tenios_io.custody.tlogproof`),
what `audit prove` writes: one per custody event of a recording.  Together they
prove which events of the recording the signed (and witnessed) log holds, and what
its logged ``archived`` event states: the object's key, version, SHA-256, size, when
it was archived and its retention.

:func:`check_proof` still checks the JSON bundle earlier versions of `audit prove`
wrote, so bundles handed out before stay verifiable.  It is one JSON file::

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

import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import CheckpointError, open_checkpoint
from tenios_io.custody.layout import parse_entry
from tenios_io.custody.tlogproof import (
    ProofFailed,
    ProofKeys,
    ProvenEvent,
    parse_proof,
    verify_proof,
)
from tenios_io.files import sha256_file

FORMAT = "tenios-archive custody proof v1"


_OBJECT_FIELDS = ("bucket", "key", "version_id", "sha256", "size", "retention_mode", "retain_until")


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
        digest, size = sha256_file(recording)
        result.object_checked = True
        if (digest, size) != (archived.get("sha256"), archived.get("size_bytes")):
            result.problems.append(
                f"{recording} hashes to {digest} ({size} bytes); the log says "
                f"{archived.get('sha256')} ({archived.get('size_bytes')} bytes)"
            )
    return result


@dataclass
class ProofsCheck:
    """What :func:`check_proofs` found in a recording's tlog-proofs."""

    proven: list[tuple[str, ProvenEvent]] = field(default_factory=list)
    """(the proof's name, what it proved) in leaf order."""
    failed: list[tuple[str, ProofFailed]] = field(default_factory=list)
    object_checked: bool = False
    problems: list[str] = field(default_factory=list)
    """Problems beyond a single proof (e.g. the bytes of ``--object``)."""

    @property
    def ok(self) -> bool:
        return bool(self.proven) and not self.failed and not self.problems

    @property
    def recordings(self) -> list[str]:
        return sorted({str(p.event["recording_uuid"]) for _, p in self.proven})

    @property
    def archived(self) -> ProvenEvent | None:
        """The last proven ``archived`` event (None: the proofs do not say it was archived)."""
        found = [p for _, p in self.proven if p.event["event"] == "archived"]
        return found[-1] if found else None

    @property
    def newest(self) -> ProvenEvent | None:
        """The proof against the largest checkpoint."""
        return max((p for _, p in self.proven), key=lambda p: p.checkpoint.size, default=None)


def check_proofs(
    proofs: Sequence[tuple[str, bytes]], keys: ProofKeys, *, recording: Path | None = None
) -> ProofsCheck:
    """Verify each named tlog-proof; never raises for what it finds.

    With ``recording`` (a downloaded copy of the recording) its bytes must hash to the
    SHA-256 and size of the proven ``archived`` event, and the proofs must all be of
    one recording.
    """
    result = ProofsCheck()
    for name, body in proofs:
        try:
            result.proven.append((name, verify_proof(parse_proof(body), keys)))
        except ProofFailed as exc:
            result.failed.append((name, exc))
    result.proven.sort(key=lambda item: item[1].index)
    if not proofs:
        result.problems.append("no tlog-proof to check")
    if recording is None:
        return result
    archived = result.archived
    if len(result.recordings) > 1:
        result.problems.append(
            f"--object needs the proofs of one recording; these are of {len(result.recordings)}"
        )
    elif archived is None:
        result.problems.append("no proven `archived` event to check the object against")
    else:
        digest, size = sha256_file(recording)
        result.object_checked = True
        logged = (archived.details.get("sha256"), archived.details.get("size_bytes"))
        if (digest, size) != logged:
            result.problems.append(
                f"{recording} hashes to {digest} ({size} bytes); the log says "
                f"{logged[0]} ({logged[1]} bytes)"
            )
    return result
