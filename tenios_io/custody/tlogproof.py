"""C2SP tlog-proof (https://c2sp.org/tlog-proof): an offline proof that one custody event
is in the custody log, written by `audit prove` and checked by `audit check-proof`.

One proof is UTF-8 text, lines separated by ``\\n``::

    c2sp.org/tlog-proof@v1
    extra <base64 of the log entry: the custody event's canonical JSON>
    index <zero-based leaf index, decimal, no leading zeros>
    <base64 SHA-256>          zero or more lines: the RFC 6962 inclusion proof,
    …                         from the leaf's sibling up to the root's child
    <empty line>
    <the checkpoint, verbatim: a signed note with the log's signature line and
     any witness cosignature lines after it>

The spec leaves the leaf hash to the application and lets ``extra`` carry "additional
data necessary to reconstruct the record hash": ours carries the whole log entry, so
the proof is self-contained.  Extra data is unauthenticated by itself, and is trusted
here only because its leaf hash is proven included in a signed tree.

Verification follows the spec's four steps in its order, and a failure names its
step: ``leaf`` (the entry in ``extra`` is a custody event), ``signature`` (the
checkpoint's origin is the expected one and a log key signed it), ``witnesses``
(the cosignatures satisfy the witness policy), ``inclusion`` (the proof binds the
leaf hash to the signed root); then ``entry``: leaf ``i`` is the event ``seq = i + 1``.
``format`` is a proof that cannot be parsed.  The format is written here because no
maintained Python package reads tlog-proofs; hashing is :mod:`tenios_io.custody.merkle`'s.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import CheckpointError, LogCheckpoint, open_checkpoint
from tenios_io.custody.cosignature import PolicyResult, WitnessPolicy
from tenios_io.custody.layout import parse_entry

HEADER = "c2sp.org/tlog-proof@v1"
EXTENSION = ".tlog-proof"
"""The spec's file extension (a SHOULD)."""
MAX_PROOF_BYTES = 1 << 20
_MAX_PROOF_HASHES = 63  # a tree of at most 2**63 leaves

Step = Literal["format", "leaf", "signature", "witnesses", "inclusion", "entry"]


class ProofFailed(ValueError):
    """A tlog-proof that does not verify; ``step`` names the verification step."""

    def __init__(self, step: Step, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step: Step = step
        self.detail = message


@dataclass(frozen=True)
class TlogProof:
    """One parsed tlog-proof."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    """The checkpoint note verbatim (signature and cosignature lines included)."""
    extra: bytes | None = None


def format_proof(proof: TlogProof) -> bytes:
    """The text of ``proof`` as the spec writes it."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append(f"extra {base64.b64encode(proof.extra).decode()}")
    lines.append(f"index {proof.index}")
    lines += [base64.b64encode(h).decode() for h in proof.hashes]
    return ("\n".join(lines) + "\n\n").encode() + proof.checkpoint


def parse_proof(body: bytes) -> TlogProof:
    """A tlog-proof's parts; ProofFailed("format", …) when it is not one, exactly."""
    if len(body) > MAX_PROOF_BYTES:
        raise ProofFailed("format", f"larger than {MAX_PROOF_BYTES} bytes")
    head, sep, checkpoint = body.partition(b"\n\n")
    if not sep:
        raise ProofFailed("format", "no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise ProofFailed("format", "the lines before the checkpoint are not ASCII") from None
    if lines[0] != HEADER:
        raise ProofFailed("format", f"the first line is not {HEADER!r}")
    extra: bytes | None = None
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        extra = _base64(rest.pop(0).removeprefix("extra "), "the extra line")
    if not rest or not rest[0].startswith("index "):
        raise ProofFailed("format", "no 'index N' line")
    number = rest.pop(0).removeprefix("index ")
    if not number.isdigit() or not number.isascii() or (number != "0" and number[0] == "0"):
        raise ProofFailed("format", f"index {number[:30]!r} is not a decimal without leading 0")
    if len(rest) > _MAX_PROOF_HASHES:
        raise ProofFailed("format", f"more than {_MAX_PROOF_HASHES} inclusion proof lines")
    hashes = []
    for position, line in enumerate(rest, start=1):
        raw = _base64(line, f"inclusion proof line {position}")
        if len(raw) != merkle.HASH_SIZE:
            raise ProofFailed("format", f"inclusion proof line {position} is not a SHA-256 hash")
        hashes.append(raw)
    if not checkpoint:
        raise ProofFailed("format", "no checkpoint after the empty line")
    return TlogProof(int(number), tuple(hashes), checkpoint, extra)


def _base64(text: str, what: str) -> bytes:
    try:
        return signing.b64decode_strict(text)
    except (binascii.Error, ValueError):
        raise ProofFailed("format", f"{what} is not canonical base64") from None


@dataclass(frozen=True)
class ProvenEvent:
    """A custody event a tlog-proof proved, and what proved it."""

    index: int
    event: dict[str, Any]
    entry: bytes
    checkpoint: LogCheckpoint
    log_key: signing.Verifier
    """The log key that signed the checkpoint."""
    witnesses: PolicyResult | None = None
    """The witness policy's outcome, when a policy was given."""

    @property
    def details(self) -> Mapping[str, Any]:
        details = self.event["details"]
        assert isinstance(details, dict)
        return details


@dataclass(frozen=True)
class ProofKeys:
    """What a verifier trusts: log keys (an old and a rotated-to key may both be given),
    the origin a checkpoint must name (None: any origin those keys signed), and a
    witness policy (None: cosignatures are not required)."""

    logs: Sequence[signing.Verifier]
    origin: str | None = None
    witnesses: WitnessPolicy | None = None


def verify_proof(proof: TlogProof, keys: ProofKeys) -> ProvenEvent:
    """Verify ``proof`` as the spec's steps do; ProofFailed naming the failed step."""
    # 1. the leaf hash: the application's part; ours is the entry ``extra`` carries
    if proof.extra is None:
        raise ProofFailed("leaf", "the proof carries no log entry (no extra line)")
    try:
        event = parse_entry(proof.extra)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProofFailed("leaf", f"the extra data is not a custody log entry ({exc})") from None
    leaf = merkle.leaf_hash(proof.extra)
    # 2. the origin is acceptable and a log key configured for it signed the checkpoint
    checkpoint, log_key = _open_signed(proof.checkpoint, keys.logs)
    if keys.origin is not None and checkpoint.origin != keys.origin:
        raise ProofFailed(
            "signature",
            f"the checkpoint is for origin {checkpoint.origin!r}, not {keys.origin!r}",
        )
    # 3. the cosignatures of the witnesses the verifier knows, against its policy
    outcome = None
    if keys.witnesses is not None:
        try:
            outcome = keys.witnesses.check(proof.checkpoint)
        except signing.NoteError as exc:
            raise ProofFailed("witnesses", f"a cosignature does not verify ({exc})") from None
        if not outcome.satisfied:
            raise ProofFailed("witnesses", f"the policy is not met: {outcome.describe()}")
    # 4. the inclusion proof binds the leaf hash to the signed root
    try:
        merkle.verify_inclusion(leaf, proof.index, checkpoint.size, proof.hashes, checkpoint.root)
    except merkle.ProofError as exc:
        raise ProofFailed(
            "inclusion", f"leaf {proof.index} of the tree of {checkpoint.size}: {exc}"
        ) from None
    if event["seq"] != proof.index + 1:
        raise ProofFailed(
            "entry", f"leaf {proof.index} holds event seq {event['seq']}, not {proof.index + 1}"
        )
    return ProvenEvent(proof.index, event, proof.extra, checkpoint, log_key, outcome)


def _open_signed(
    note: bytes, logs: Sequence[signing.Verifier]
) -> tuple[LogCheckpoint, signing.Verifier]:
    problems = []
    for verifier in logs:
        try:
            return open_checkpoint(note, verifier), verifier
        except CheckpointError as exc:
            problems.append(str(exc))
    raise ProofFailed("signature", "; ".join(problems) or "no log key given")
