"""Witness cosignatures of checkpoints (C2SP tlog-cosignature, the Ed25519 cosignature/v1).

A witness that checked a checkpoint extends what it saw before adds one signature
line to the checkpoint's signed note::

    — <witness name> base64(key id (4 bytes) || timestamp (uint64 BE) || Ed25519 signature)

- key id: ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` (0x04 names cosignature/v1);
- signed message: ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's
  whole note body (its text up to and including the final newline, no signature lines);
- keys travel in the signed-note vkey form: verifier ``name+hex(key id)+base64(0x04 ||
  public key)``, signer ``PRIVATE+KEY+name+hex(key id)+base64(0x04 || seed)``.

The text handling of notes is :mod:`~tenios_io.custody.signing`'s (one parser of
signature lines); the Ed25519 arithmetic is the ``cryptography`` package's.  Written
here because no maintained Python package implements cosignature/v1.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tenios_io.custody.signing import (
    SIGNATURE_PREFIX,
    NoteError,
    b64decode_strict,
    check_name,
    key_hash,
    parse_key_text,
    read_key_file,
    split_note,
    write_key_file,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1\n"
_SIGNATURE_BYTES = 4 + 8 + 64
_MAX_TIMESTAMP = (1 << 63) - 1


def signed_message(body: bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: the header, the time line and the checkpoint body."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return f"{HEADER}time {timestamp}\n".encode() + body


@dataclass(frozen=True)
class WitnessVerifier:
    """A witness's public cosignature/v1 key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_hash(self.name, self.public_key, ALG_COSIGNATURE_V1)

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def matches(self, name: str, raw: bytes) -> bool:
        """Whether the signature line ``name``/``raw`` claims to be this witness's."""
        return name == self.name and raw[:4] == self.key_id

    def timestamp_of(self, body: bytes, raw: bytes) -> int:
        """The timestamp of this witness's valid cosignature ``raw`` of ``body``.

        NoteError when the signature is malformed or does not verify.
        """
        if len(raw) != _SIGNATURE_BYTES:
            raise NoteError(f"the cosignature of {self.name!r} is not {_SIGNATURE_BYTES} bytes")
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        try:
            message = signed_message(body, timestamp)
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(raw[12:], message)
        except (InvalidSignature, NoteError):
            raise NoteError(
                f"the cosignature of witness {self.name!r} does not verify (the checkpoint "
                "was altered, or the line was not made by that witness)"
            ) from None
        return int(timestamp)


def parse_witness_verifier(text: str) -> WitnessVerifier:
    """A witness verifier key ``name+keyid+base64(0x04 || key)``; NoteError if malformed."""
    name, expected, public = parse_key_text(text, private=False, alg=ALG_COSIGNATURE_V1)
    verifier = WitnessVerifier(name, public)
    if verifier.key_id != expected:
        raise NoteError("the witness key's id does not match its name and key")
    return verifier


@dataclass(frozen=True)
class WitnessSigner:
    """A witness's private cosignature/v1 key (secret: never printed)."""

    name: str
    _seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        return cls(check_name(name), os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> WitnessSigner:
        """A signer key string; NoteError (never quoting the key) when malformed."""
        name, expected, seed = parse_key_text(text, private=True, alg=ALG_COSIGNATURE_V1)
        signer = cls(name, seed)
        if signer.verifier.key_id != expected:
            raise NoteError("the witness key's id does not match its name and key")
        return signer

    @classmethod
    def read(cls, path: Path) -> WitnessSigner:
        """Load the key file ``path``; NoteError / OSError name the file, not the key."""
        return read_key_file(path, cls.parse, "witness")

    def write(self, path: Path) -> None:
        """Write a new key file with mode 0600; FileExistsError if ``path`` exists."""
        write_key_file(path, self.key_text())

    @property
    def verifier(self) -> WitnessVerifier:
        public = (
            Ed25519PrivateKey.from_private_bytes(self._seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return WitnessVerifier(self.name, public)

    def key_text(self) -> str:
        """The secret key string (for the key file only)."""
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self._seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self._seed).sign(message)


def cosign(body: str, signer: WitnessSigner, timestamp: int) -> str:
    """The cosignature line (``— name base64…\\n``) of checkpoint ``body`` at ``timestamp``."""
    if not body.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    signature = signer.sign(signed_message(body.encode(), timestamp))
    raw = signer.verifier.key_id + struct.pack(">Q", timestamp) + signature
    return f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(raw).decode()}\n"


def verify_cosignatures(note: bytes, witnesses: Sequence[WitnessVerifier]) -> dict[str, int]:
    """Witness name → timestamp of each valid cosignature on ``note``.

    Lines of keys not in ``witnesses`` (the log's own signature among them) are
    ignored; a line claiming a known witness's key that does not verify raises
    NoteError, because someone altered the checkpoint or forged the line.
    """
    body, signatures = split_note(note)
    found: dict[str, int] = {}
    for name, raw in signatures:
        for witness in witnesses:
            if witness.matches(name, raw):
                timestamp = witness.timestamp_of(body, raw)
                found[name] = max(timestamp, found.get(name, timestamp))
    return found


@dataclass(frozen=True)
class PolicyResult:
    """Which of a policy's witnesses cosigned a checkpoint, and whether that is enough."""

    satisfied: bool
    quorum: int
    witnessed: dict[str, int]
    """Witness name → timestamp of its valid cosignature."""
    missing: tuple[str, ...]

    def describe(self) -> str:
        """One line: how many of the needed cosignatures are there, and whose are missing."""
        text = f"{len(self.witnessed)} of {self.quorum} needed witness cosignatures"
        if self.missing:
            text += f" (missing: {', '.join(self.missing)})"
        return text


@dataclass(frozen=True)
class WitnessPolicy:
    """``quorum`` of ``witnesses`` must cosign a checkpoint before it counts as witnessed."""

    witnesses: tuple[WitnessVerifier, ...]
    quorum: int

    def __post_init__(self) -> None:
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise ValueError("two witness keys share a name; each witness needs its own name")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise ValueError(
                f"the witness quorum {self.quorum} must be between 0 and the number of "
                f"witnesses ({len(self.witnesses)})"
            )

    def check(self, note: bytes) -> PolicyResult:
        """Which witnesses cosigned ``note``; NoteError if a known witness's line is forged."""
        witnessed = verify_cosignatures(note, self.witnesses)
        missing = tuple(w.name for w in self.witnesses if w.name not in witnessed)
        return PolicyResult(len(witnessed) >= self.quorum, self.quorum, witnessed, missing)


def add_signatures(note: bytes, lines: Sequence[str]) -> bytes:
    """``note`` with the signature ``lines`` appended, at most one line per key.

    A line whose key (name and key id) already signs the note is left out, so adding
    the same witness's answer twice leaves the bytes unchanged.  The lines are checked
    to be well-formed signature lines; whether they verify is the reader's business
    (:func:`verify_cosignatures`).
    """
    _body, signatures = split_note(note)
    keys = {(name, raw[:4]) for name, raw in signatures}
    added: list[str] = []
    for line in lines:
        text = line.removesuffix("\n")
        if "\n" in text or not text.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"not one signature line: {text[:40]!r}")
        name, _, encoded = text[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = b64decode_strict(encoded)
        except ValueError:
            raise NoteError(f"signature of {name!r} is not base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature of {name!r} is too short")
        check_name(name)
        if (name, raw[:4]) not in keys:
            keys.add((name, raw[:4]))
            added.append(text + "\n")
    return note + "".join(added).encode()


__all__ = [
    "ALG_COSIGNATURE_V1",
    "PolicyResult",
    "WitnessPolicy",
    "WitnessSigner",
    "WitnessVerifier",
    "add_signatures",
    "cosign",
    "parse_witness_verifier",
    "signed_message",
    "verify_cosignatures",
]
