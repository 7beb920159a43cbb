"""The custody facts a recording object carries as S3 user metadata, in the PUT that writes it.

One write per recording: instead of a second object beside it (the ``.json``
sidecar of earlier versions), the object itself says what it is, immutable and
locked with it — ``aws s3api head-object`` alone tells an auditor:

``recording-uuid``, ``call-uuid``, ``sha256``, ``size``, ``source``, ``fetched-at``,
``tool-version``, and what validation learned (``codec``, ``channels``,
``sample-rate``, ``duration-seconds``) where known.

S3 allows 2 KB of user metadata (the UTF-8 bytes of every name and value) and only
US-ASCII values.  Values are percent-encoded (printable ASCII except ``%`` kept, so
``unquote`` is exact).  A value that would not fit — a very long SFTP path as
``source``, an odd ``call-uuid`` — is replaced by ``sha256:<hex>`` of the full
value, which an auditor compares with the ledger's by hashing it.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, unquote

__all__ = [
    "CUSTODY_FIELDS",
    "MAX_METADATA_BYTES",
    "custody_metadata",
    "encode_metadata",
    "matches",
    "metadata_bytes",
    "written_with_custody_metadata",
]

MAX_METADATA_BYTES: Final = 2048
"""S3's limit on user metadata: the UTF-8 bytes of all names and values together."""

CUSTODY_FIELDS: Final = (
    "recording-uuid",
    "call-uuid",
    "sha256",
    "size",
    "source",
    "fetched-at",
    "tool-version",
)
"""Names every recording object written by this version carries (``call-uuid`` when known)."""

_SHORTENABLE: Final = ("source", "call-uuid")
"""Free-form values, shortened to their SHA-256 (longest first) when the total is too long."""

# S3 metadata must be US-ASCII: keep printable ASCII except '%' (so unquote is exact),
# percent-encode everything else — non-ASCII, spaces, control characters.
_META_SAFE: Final = "".join(c for c in string.printable[:94] if c != "%")


def encode_metadata(values: Mapping[str, str | None]) -> dict[str, str]:
    """``values`` without empty ones, names with ``-`` for ``_``, values percent-encoded."""
    return {
        name.replace("_", "-"): quote(value, safe=_META_SAFE)
        for name, value in values.items()
        if value
    }


def metadata_bytes(metadata: Mapping[str, str]) -> int:
    """What S3 counts against :data:`MAX_METADATA_BYTES`."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())


def custody_metadata(
    *,
    recording_uuid: str,
    call_uuid: str | None,
    sha256: str,
    size: int,
    source: str,
    fetched_at: str | None,
    tool_version: str,
    audio: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The object's user metadata (encoded), at most :data:`MAX_METADATA_BYTES`.

    ``audio`` holds the validation's facts (:meth:`AudioFacts.as_metadata`); names may
    use ``_`` or ``-``.  ValueError if it cannot fit even with the free-form values
    shortened (only an absurd ``audio`` mapping can do that).
    """
    values: dict[str, str | None] = {
        "recording-uuid": recording_uuid,
        "call-uuid": call_uuid,
        "sha256": sha256,
        "size": str(size),
        "source": source,
        "fetched-at": fetched_at,
        "tool-version": tool_version,
    }
    for name, value in (audio or {}).items():
        values.setdefault(name.replace("_", "-"), value)
    encoded = encode_metadata(values)
    for name in sorted(_SHORTENABLE, key=lambda n: -len(encoded.get(n, ""))):
        if metadata_bytes(encoded) <= MAX_METADATA_BYTES:
            break
        if name in encoded:
            encoded[name] = "sha256:" + hashlib.sha256(unquote(encoded[name]).encode()).hexdigest()
    if metadata_bytes(encoded) > MAX_METADATA_BYTES:
        raise ValueError(
            f"custody metadata of {recording_uuid} needs {metadata_bytes(encoded)} bytes, "
            f"S3 allows {MAX_METADATA_BYTES}"
        )
    return encoded


def written_with_custody_metadata(metadata: Mapping[str, str]) -> bool:
    """Whether an object's (decoded) metadata has this version's custody facts; False for
    objects written by earlier versions, which may have a ``.json`` sidecar instead."""
    return "fetched-at" in metadata and "size" in metadata


def matches(value: str | None, expected: str | None) -> bool:
    """Whether a (decoded) metadata value says ``expected``: equal, or its shortened form."""
    if value is None or expected is None:
        return value == expected
    if value == expected:
        return True
    return value == "sha256:" + hashlib.sha256(expected.encode()).hexdigest()
