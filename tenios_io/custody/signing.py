"""Ed25519 signed notes (C2SP signed-note), the envelope of the custody log's checkpoints.

A note is UTF-8 text ending in a newline, a blank line, then one signature line per
signer::

    <text>\\n
    \\n
    — <key name> base64(key hash (4 bytes) || Ed25519 signature)\\n

The key hash is the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``
(0x01 names the Ed25519 algorithm).  Keys travel as strings in the form Go's
``golang.org/x/mod/sumdb/note`` uses, so Go's verifier accepts ours:

- verifier key (public): ``name+hex(key hash)+base64(0x01 || public key)``;
- signer key (secret): ``PRIVATE+KEY+name+hex(key hash)+base64(0x01 || seed)``.

The Ed25519 arithmetic is the ``cryptography`` package's; only the text format is
written here, because no maintained Python package implements signed notes.
A signer key's text must never be logged: :class:`Signer` keeps it out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tenios_io.files import KEY_FILE_LIMIT, FileTooLarge, read_capped

T = TypeVar("T")
ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space, as the spec writes it
_MAX_NOTE_BYTES = 1 << 20


class NoteError(ValueError):
    """A key string or note is malformed, or a signature does not verify."""


def b64decode_strict(text: str) -> bytes:
    """Standard base64 in its one canonical spelling (binascii.Error otherwise).

    Python's decoder ignores the unused low bits before ``=`` padding, so two
    spellings would decode to the same bytes; evidence must have exactly one.
    """
    if not text.isascii():  # b64decode raises a bare ValueError for these
        raise binascii.Error("base64 holds a character that is not ASCII")
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise binascii.Error("non-canonical base64")
    return raw


def key_hash(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte key hash of a key named ``name`` of signature type ``alg``.

    ``alg`` is 0x01 for a note signer's Ed25519 key, 0x04 for a witness's
    cosignature/v1 key (:mod:`~tenios_io.custody.cosignature`).
    """
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def check_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


@dataclass(frozen=True)
class Verifier:
    """A public Ed25519 note verifier key."""

    name: str
    public_key: bytes

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.hash.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 note signer key (secret: never printed)."""

    name: str
    _seed: bytes = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        public = (
            Ed25519PrivateKey.from_private_bytes(self._seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return Verifier(self.name, public)

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self._seed).sign(message)

    def key_text(self) -> str:
        """The secret key string (for the key file only)."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self._seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.hash.hex()}+{encoded}"


def generate(name: str) -> Signer:
    """A fresh signer key named ``name``."""
    return Signer(check_name(name), os.urandom(32))


def parse_key_text(text: str, *, private: bool, alg: int = ALG_ED25519) -> tuple[str, bytes, bytes]:
    """The name, key hash and 32 key bytes of a key string of signature type ``alg``."""
    text = text.strip()
    if private:
        if not text.startswith("PRIVATE+KEY+"):
            raise NoteError("not a signer key (expected PRIVATE+KEY+name+hash+key)")
        text = text.removeprefix("PRIVATE+KEY+")
    parts = text.split("+", 2)  # the base64 key may itself contain '+'
    if len(parts) != 3:
        raise NoteError("not a verifier key (expected name+hash+key, as `audit keygen` prints)")
    name, hash_hex, encoded = parts
    try:
        raw = b64decode_strict(encoded)
        expected = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise NoteError("the key's hash or key part is not hex / base64") from None
    if len(raw) != 33 or raw[0] != alg or len(expected) != 4:
        kind = "an Ed25519" if alg == ALG_ED25519 else f"a type 0x{alg:02x} (cosignature/v1)"
        raise NoteError(f"not {kind} key")
    return check_name(name), expected, raw[1:]


def parse_verifier(text: str) -> Verifier:
    """A verifier key string ``name+hash+key``; NoteError when malformed or inconsistent."""
    name, expected, public = parse_key_text(text, private=False)
    verifier = Verifier(name, public)
    if verifier.hash != expected:
        raise NoteError("the verifier key's hash does not match its name and key")
    return verifier


def parse_signer(text: str) -> Signer:
    """A signer key string; NoteError (never quoting the key) when malformed."""
    name, expected, seed = parse_key_text(text, private=True)
    signer = Signer(name, seed)
    if signer.verifier.hash != expected:
        raise NoteError("the signer key's hash does not match its name and key")
    return signer


def read_key_file(path: Path, parse: Callable[[str], T], what: str = "signer") -> T:
    """``parse`` of key file ``path``; NoteError / OSError name the file, never the key."""
    try:
        return parse(read_capped(path, KEY_FILE_LIMIT).decode("ascii"))
    except FileTooLarge as exc:
        raise NoteError(f"{exc}: not a {what} key file") from None
    except UnicodeDecodeError:
        raise NoteError(f"{path} is not a {what} key file") from None
    except NoteError as exc:
        raise NoteError(f"{path}: {exc}") from None


def write_key_file(path: Path, key_text: str) -> None:
    """Write a new key file with mode 0600; FileExistsError if ``path`` exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key_text + "\n")


def read_signer(path: Path) -> Signer:
    """Load the signer key file ``path``; NoteError / OSError name the file, not the key."""
    return read_key_file(path, parse_signer)


def write_signer(path: Path, signer: Signer) -> None:
    """Write a new key file with mode 0600; FileExistsError if ``path`` exists."""
    write_key_file(path, signer.key_text())


def sign_note(text: str, signer: Signer) -> bytes:
    """The signed note of ``text`` (which must end in a newline)."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    body = text.encode()
    signature = base64.b64encode(signer.verifier.hash + signer.sign(body)).decode()
    return body + f"\n{SIGNATURE_PREFIX}{signer.name} {signature}\n".encode()


@dataclass(frozen=True)
class Note:
    """An opened note: its text and which of the expected keys signed it."""

    text: str
    signed_by: tuple[str, ...]
    other_signers: tuple[str, ...]
    """Names on signature lines of keys not given (or not matching)."""


def split_note(note: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The text and its (name, key hash || signature) lines; NoteError if malformed."""
    if len(note) > _MAX_NOTE_BYTES:
        raise NoteError("note too large")
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not UTF-8") from None
    cut = decoded.rfind("\n\n")
    if cut < 0 or not decoded.endswith("\n"):
        raise NoteError("note has no signature block")
    text, block = decoded[: cut + 1], decoded[cut + 2 :]
    signatures: list[tuple[str, bytes]] = []
    for line in block.removesuffix("\n").split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = b64decode_strict(encoded)
        except binascii.Error:
            raise NoteError(f"signature of {name!r} is not base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature of {name!r} is too short")
        signatures.append((name, raw))
    return text.encode(), signatures


def open_note(note: bytes, verifier: Verifier) -> str:
    """The note's text if ``verifier`` signed it; NoteError saying why not otherwise."""
    text, signatures = split_note(note)
    for name, raw in signatures:
        if name == verifier.name and raw[:4] == verifier.hash:
            if verifier.verify(text, raw[4:]):
                return text.decode()
            raise NoteError(f"the signature of {name!r} does not verify (the note was altered)")
    names = ", ".join(sorted({name for name, _ in signatures})) or "nobody"
    raise NoteError(
        f"not signed by the key {verifier.name}+{verifier.hash.hex()} (signed by {names})"
    )
