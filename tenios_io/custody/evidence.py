"""Evidence packages: one recording's bytes with everything needed to prove them, checked
from the files alone (`audit check-evidence`; the package's ``verify.html`` runs the same
steps in a browser).  Built by :mod:`tenios_io.audit.evidence`.

A package is one folder ``<recording_uuid>/`` holding::

    evidence.json              what is proved (format below)
    <recording_uuid>.<ext>     the recording's bytes as archived (absent once purged)
    proofs/<leaf>.tlog-proof   one C2SP tlog-proof per custody event; its ``extra`` line
                               carries the event's log entry (base64), so each proof
                               file is complete on its own
    verify.html                the same checks in any browser, offline
    README.txt                 how to check without the page

The checks, in the order a verdict names the first that failed (:data:`STEPS`):

``checkpoint``   the checkpoint note is signed by the log's key (Ed25519 signed note);
``cosignature``  it carries cosignatures (C2SP cosignature/v1) of at least ``quorum``
                 of the package's witness keys;
``event``        every event of ``evidence.json`` is the entry its proof carries, a
                 canonical custody event of this recording at that leaf, and the
                 package holds every event the recording had when it was exported —
                 the export's own ``exported`` event (which is proved like the others)
                 lists their leaf indices, so dropping one is caught;
``inclusion``    every entry's leaf hash leads through its inclusion proof to the
                 checkpoint's root (RFC 6962);
``recording``    the recording's bytes hash to what the ``archived`` event logged.

The keys in a package are the ones its builder used: a reader who must not trust the
sender compares the log key (and witness keys) with ones obtained independently —
``check-evidence --key`` pins them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenios_io.custody import merkle, signing, tlogproof
from tenios_io.custody.checkpoints import CheckpointError, open_checkpoint
from tenios_io.custody.cosignature import (
    WitnessVerifier,
    parse_witness_verifier,
    verify_cosignatures,
)
from tenios_io.custody.layout import parse_entry
from tenios_io.custody.tlogproof import TlogProof
from tenios_io.files import sha256_file

FORMAT = "tenios-archive evidence v1"
PROOF_HEADER = tlogproof.HEADER
STEPS = ("checkpoint", "cosignature", "event", "inclusion", "recording")
"""The steps of a check, in the order a verdict names the first failure."""

EMBED_LIMIT = 32 * 1024 * 1024
"""Recordings up to this size travel inside ``verify.html`` (base64); above it the page
asks the reader to drop the recording file onto it (a page opened from ``file://`` may
not read the files beside it)."""

MAX_JSON_BYTES = 16 * 1024 * 1024
"""``evidence.json`` larger than this is not read (a package is built by this tool; a
bigger file is not one)."""


class EvidenceError(ValueError):
    """A package that cannot be read at all (missing or malformed file)."""


# -- tlog-proof text -----------------------------------------------------------------------


def format_proof(proof: TlogProof) -> str:
    """The tlog-proof text (C2SP tlog-proof v1, :mod:`tenios_io.custody.tlogproof`)."""
    return tlogproof.format_proof(proof).decode("utf-8")


def parse_proof(text: bytes) -> TlogProof:
    """A tlog-proof back; EvidenceError naming what is wrong."""
    try:
        return tlogproof.parse_proof(text)
    except tlogproof.ProofFailed as exc:
        raise EvidenceError(f"a proof is not a C2SP tlog-proof: {exc.detail}") from None


# -- the check -----------------------------------------------------------------------------


@dataclass
class StepResult:
    ok: bool = True
    detail: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class EvidenceCheck:
    """What :func:`check_package` found, step by step."""

    recording_uuid: str = ""
    steps: dict[str, StepResult] = field(default_factory=lambda: {s: StepResult() for s in STEPS})
    document: dict[str, Any] = field(default_factory=dict)
    archived: dict[str, Any] | None = None
    archived_at: str | None = None
    witnessed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps.values())

    @property
    def failed_step(self) -> str | None:
        return next((name for name in STEPS if not self.steps[name].ok), None)

    def fail(self, step: str, problem: str) -> None:
        self.steps[step].ok = False
        self.steps[step].problems.append(problem)


def read_document(folder: Path) -> dict[str, Any]:
    """``evidence.json`` of a package folder; EvidenceError when it is missing or bad."""
    path = folder / "evidence.json"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise EvidenceError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise EvidenceError(f"{path} is larger than {MAX_JSON_BYTES} bytes: not a package")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path} is not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EvidenceError(f"{path} is not a {FORMAT!r} document")
    return document


def check_package(
    folder: Path,
    *,
    log_key: signing.Verifier | None = None,
    witnesses: Sequence[WitnessVerifier] | None = None,
    quorum: int | None = None,
) -> EvidenceCheck:
    """Check one recording's package folder; failures are recorded per step, never
    raised (EvidenceError only when ``evidence.json`` cannot be read at all).

    ``log_key``/``witnesses``/``quorum`` pin what the reader trusts; by default the
    package's own keys and policy are used (the result says which).
    """
    document = read_document(folder)
    result = EvidenceCheck(document=document)
    result.recording_uuid = str(document.get("recording_uuid", ""))
    log: dict[str, Any] = document["log"] if isinstance(document.get("log"), dict) else {}
    note = str(log.get("checkpoint", "")).encode("utf-8")
    checkpoint = _check_checkpoint(result, log, note, log_key)
    _check_cosignatures(result, log, note, witnesses, quorum)
    entries = _check_events(result, folder, document, note)
    if checkpoint is not None:
        _check_inclusion(result, entries, checkpoint)
    else:
        result.fail("inclusion", "no verified checkpoint to prove inclusion against")
    _check_recording(result, folder, document)
    return result


def _check_checkpoint(
    result: EvidenceCheck, log: dict[str, Any], note: bytes, pinned: signing.Verifier | None
) -> Any:
    try:
        verifier = pinned or signing.parse_verifier(str(log.get("key", "")))
    except (signing.NoteError, ValueError) as exc:
        result.fail("checkpoint", f"the package's log key is not a verifier key ({exc})")
        return None
    try:
        checkpoint = open_checkpoint(note, verifier)
    except (CheckpointError, signing.NoteError, ValueError) as exc:
        result.fail("checkpoint", f"the checkpoint is not signed by {verifier.name} ({exc})")
        return None
    origin = log.get("origin")
    if origin is not None and checkpoint.origin != origin:
        result.fail(
            "checkpoint", f"the checkpoint's origin {checkpoint.origin!r} is not {origin!r}"
        )
        return None
    result.steps[
        "checkpoint"
    ].detail = f"signed by {verifier.name}: {checkpoint.size} events, origin {checkpoint.origin}"
    return checkpoint


def _check_cosignatures(
    result: EvidenceCheck,
    log: dict[str, Any],
    note: bytes,
    pinned: Sequence[WitnessVerifier] | None,
    quorum: int | None,
) -> None:
    step = "cosignature"
    try:
        witnesses = (
            list(pinned)
            if pinned is not None
            else [parse_witness_verifier(str(k)) for k in log.get("witnesses") or []]
        )
    except signing.NoteError as exc:
        result.fail(step, str(exc))
        return
    need = quorum if quorum is not None else int(log.get("quorum") or len(witnesses))
    if not witnesses:
        result.steps[step].detail = "no witnesses: the checkpoint is the log's word alone"
        return
    try:
        result.witnessed = verify_cosignatures(note, witnesses)
    except (signing.NoteError, ValueError) as exc:
        result.fail(step, str(exc))
        return
    if len(result.witnessed) < need:
        missing = [w.name for w in witnesses if w.name not in result.witnessed]
        result.fail(
            step,
            f"{len(result.witnessed)} of {len(witnesses)} witnesses cosigned, {need} needed "
            f"(missing: {', '.join(missing)})",
        )
        return
    result.steps[step].detail = f"cosigned by {', '.join(sorted(result.witnessed))}"


def _check_events(
    result: EvidenceCheck, folder: Path, document: dict[str, Any], note: bytes
) -> list[tuple[int, bytes, TlogProof]]:
    step = "event"
    checked: list[tuple[int, bytes, TlogProof]] = []
    events = document.get("events")
    if not isinstance(events, list) or not events:
        result.fail(step, "the package lists no events")
        return checked
    seen: set[int] = set()
    exported_lists: list[list[int]] = []
    export_seq = (document.get("exported") or {}).get("seq")
    for item in events:
        try:
            index = int(item["leaf_index"])
            entry = str(item["entry"]).encode("utf-8")
            proof = parse_proof(_read_small(folder / "proofs" / f"{index}.tlog-proof"))
            event = parse_entry(entry)
        except (EvidenceError, KeyError, TypeError, ValueError) as exc:
            result.fail(step, f"an event of the package cannot be read ({exc})")
            continue
        if proof.index != index or proof.extra != entry:
            result.fail(step, f"event {index + 1} is not the entry its proof carries")
            continue
        if proof.checkpoint != note:
            result.fail(step, f"the proof of event {index + 1} is for another checkpoint")
            continue
        if event["recording_uuid"] != result.recording_uuid or event["seq"] != index + 1:
            result.fail(step, f"leaf {index} is not an event of {result.recording_uuid}")
            continue
        if index in seen:
            result.fail(step, f"event {index + 1} is listed twice")
            continue
        seen.add(index)
        if event["event"] == "archived":
            result.archived = event["details"]
            result.archived_at = event["occurred_at"]
        if event["event"] == "exported" and event["seq"] == export_seq:
            earlier = event["details"].get("earlier_events")
            if isinstance(earlier, list):
                exported_lists.append([int(i) for i in earlier])
        checked.append((index, entry, proof))
    if export_seq is not None and not exported_lists:
        result.fail(step, f"the package's own export (event {export_seq}) is not in it")
    for earlier in exported_lists:
        missing = sorted(set(earlier) - seen)
        if missing:
            result.fail(
                step,
                "events of the recording logged before the export are missing: "
                + ", ".join(str(i + 1) for i in missing),
            )
    if result.steps[step].ok:
        result.steps[step].detail = f"{len(checked)} events of {result.recording_uuid}"
    return checked


def _check_inclusion(
    result: EvidenceCheck, entries: list[tuple[int, bytes, TlogProof]], checkpoint: Any
) -> None:
    for index, entry, proof in entries:
        try:
            merkle.verify_inclusion(
                merkle.leaf_hash(entry), index, checkpoint.size, list(proof.hashes), checkpoint.root
            )
        except merkle.ProofError as exc:
            result.fail("inclusion", f"event {index + 1} is not in the checkpoint's tree ({exc})")
    if result.steps["inclusion"].ok:
        result.steps[
            "inclusion"
        ].detail = f"{len(entries)} events in the tree of {checkpoint.size} events"


def _check_recording(result: EvidenceCheck, folder: Path, document: dict[str, Any]) -> None:
    step = "recording"
    archived = result.archived
    name = document.get("recording_file")
    if archived is None:
        result.fail(step, "no proven `archived` event: the log does not say it was archived")
        return
    if name is None:
        if document.get("purged"):
            result.steps[step].detail = "purged: the package holds no bytes"
            return
        result.fail(step, "the package holds no recording file")
        return
    path = folder / Path(str(name)).name  # never outside the package folder
    try:
        digest, size = sha256_file(path)
    except OSError as exc:
        result.fail(step, f"{path.name}: {exc.strerror or exc}")
        return
    if (digest, size) != (archived.get("sha256"), archived.get("size_bytes")):
        result.fail(
            step,
            f"{path.name} hashes to {digest} ({size} bytes); the log says "
            f"{archived.get('sha256')} ({archived.get('size_bytes')} bytes)",
        )
        return
    result.steps[step].detail = f"SHA-256 {digest} ({size:,} bytes), as archived"


def _read_small(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(tlogproof.MAX_PROOF_BYTES + 1)
    except OSError as exc:
        raise EvidenceError(f"{path.name}: {exc.strerror or exc}") from None
