"""Custody key rotation: the ``key_rotated`` event and following it through the log.

The custody key signs every checkpoint; an auditor holds its verifier key.  A new key
is accepted only when the old key vouches for it: `audit rotate-key` logs a
``key_rotated`` event (details ``old_key`` and ``new_key``, both verifier keys
``NAME+HASH+KEY``) and publishes it in a checkpoint signed by the **old** key; the
checkpoints after it are signed by the new key.  So an auditor who trusts the original
key trusts each later key through the chain of rotations the log itself holds, and
a key switched without a rotation is refused (by the run's preflight, and by
`verify-bucket` as a ``signature`` finding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenios_io.custody import signing

ROTATION_EVENT = "key_rotated"


@dataclass(frozen=True)
class Rotation:
    """One logged rotation: from ``old`` to ``new`` at event ``seq``."""

    seq: int
    old: signing.Verifier
    new: signing.Verifier


def rotation_details(old: signing.Verifier, new: signing.Verifier) -> dict[str, str]:
    """The details of the ``key_rotated`` event."""
    return {"old_key": str(old), "new_key": str(new)}


def parse_rotation(event: Mapping[str, Any]) -> Rotation | None:
    """The rotation an event states (None for any other event, or a malformed one)."""
    if event.get("event") != ROTATION_EVENT:
        return None
    details = event.get("details")
    if not isinstance(details, Mapping):
        return None
    try:
        old = signing.parse_verifier(str(details.get("old_key")))
        new = signing.parse_verifier(str(details.get("new_key")))
    except signing.NoteError:
        return None
    return Rotation(int(event["seq"]), old, new)


def log_signer(note: bytes) -> str:
    """``name+hash`` of a checkpoint's first signature line: the log's own (witness
    cosignatures follow it), for messages; ``nobody`` for an unsigned one."""
    try:
        _text, signatures = signing.split_note(note)
    except signing.NoteError:
        return "nobody"
    name, raw = signatures[0]
    return f"{name}+{raw[:4].hex()}"
