"""Log checkpoints (C2SP tlog-checkpoint) inside signed notes (C2SP signed-note).

The body is ``origin\\nsize\\nbase64(root)\\n``; signed, it becomes a note with one
Ed25519 signature line.  Without a signing key (TENIOS_CUSTODY_KEY_FILE unset) the
body is written alone: an auditor's verification reports it as unsigned.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from tenios_io.custody import signing
from tenios_io.custody.merkle import HASH_SIZE


class CheckpointError(ValueError):
    """A checkpoint that cannot be parsed or whose signature does not verify."""


@dataclass(frozen=True)
class LogCheckpoint:
    """One checkpoint of the log: the tree's size and root under an origin."""

    origin: str
    size: int
    root: bytes
    note: bytes
    """The checkpoint as stored: the signed note (or the bare body when unsigned)."""
    signed: bool

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode()


def format_body(origin: str, size: int, root: bytes) -> str:
    """The checkpoint body: origin, size, base64 root, each ending in a newline."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def make_checkpoint(
    origin: str, size: int, root: bytes, signer: signing.Signer | None
) -> LogCheckpoint:
    """The checkpoint of a tree, signed when ``signer`` is given."""
    body = format_body(origin, size, root)
    note = signing.sign_note(body, signer) if signer else body.encode()
    return LogCheckpoint(origin, size, root, note, signer is not None)


def parse_body(text: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint body; CheckpointError if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or not text.endswith("\n"):
        raise CheckpointError("a checkpoint needs origin, size and root lines")
    origin, size_text, root_text = lines[:3]
    if not origin or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
        raise CheckpointError(f"malformed checkpoint origin or size {size_text!r}")
    try:
        root = signing.b64decode_strict(root_text)
    except binascii.Error:
        raise CheckpointError("checkpoint root is not base64") from None
    if len(root) != HASH_SIZE:
        raise CheckpointError("checkpoint root is not a SHA-256 hash")
    return origin, int(size_text), root


def open_checkpoint(note: bytes, verifier: signing.Verifier | None) -> LogCheckpoint:
    """Parse a stored checkpoint; with ``verifier``, CheckpointError unless it signed it.

    Without a verifier (the writer reading its own bucket before it has a key) an
    unsigned body is accepted and a signed one is read without checking.
    """
    try:
        if verifier is not None:
            text = signing.open_note(note, verifier)
            signed = True
        elif b"\n\n" in note:
            text = signing.split_note(note)[0].decode()
            signed = True
        else:
            text = note.decode("utf-8")
            signed = False
    except signing.NoteError as exc:
        raise CheckpointError(str(exc)) from None
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint is not UTF-8") from None
    origin, size, root = parse_body(text)
    return LogCheckpoint(origin, size, root, note, signed)
