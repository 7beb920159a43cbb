"""Object keys: ``{prefix}/{yyyy}/{mm}/{dd}/{uuid}.{ext}``, custody manifests, the probe,
and the ``.json`` sidecars earlier versions wrote.

Keys are built from the ledger's fixed date, so every retry targets the same
key, and nothing from the input can add or escape a path segment.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final, NamedTuple

__all__ = [
    "EXTENSIONS",
    "MANIFEST_DIR",
    "PROBE_BODY",
    "PROBE_NAME",
    "SIDECAR_SUFFIX",
    "KeyParts",
    "manifest_key",
    "manifest_prefix",
    "object_key",
    "parse_object_key",
    "probe_key",
    "sidecar_key",
    "validate_prefix",
]

EXTENSIONS: Final = frozenset({"wav", "mp3", "bin"})
"""Recording extensions an object key may end in (what checksum.detect_content_type yields)."""
PROBE_NAME: Final = ".tenios-archive-probe"
PROBE_BODY: Final = b"tenios-archive write probe: safe to keep, safe to delete\n"
"""What the write probe holds (the bucket check writes it; it is no custody evidence)."""
SIDECAR_SUFFIX: Final = ".json"
MANIFEST_DIR: Final = "_custody/manifests"

_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9._-]+")
_KEY_TAIL_RE: Final = re.compile(
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<uuid>" + _UUID_RE.pattern + r")\.(?P<ext>\w+)"
)


def validate_prefix(prefix: str) -> str:
    """The prefix without surrounding slashes; ValueError unless it is plain segments.

    A segment holds only letters, digits, ``.``, ``_`` and ``-`` and is not made of
    dots alone (no ``.`` / ``..``); segments are joined by single slashes.  The
    empty prefix is allowed (keys then start with the year).
    """
    stripped = prefix.strip("/")
    if stripped == "":
        return ""
    for segment in stripped.split("/"):
        if not _SEGMENT_RE.fullmatch(segment) or set(segment) == {"."}:
            raise ValueError(
                f"invalid S3 key prefix {prefix!r}: segments may hold only letters, digits, "
                "'.', '_' and '-' (no empty, '.' or '..' segments)"
            )
    return stripped


def object_key(prefix: str, recording_uuid: str, day: date, extension: str) -> str:
    """``{prefix}/{yyyy}/{mm}/{dd}/{recording_uuid}.{ext}`` — ValueError on anything odd.

    ``recording_uuid`` must be a canonical hyphenated UUID (it is lower-cased);
    ``extension`` must be one of :data:`EXTENSIONS`; ``prefix`` must pass
    :func:`validate_prefix`.
    """
    clean_prefix = validate_prefix(prefix)
    if not isinstance(recording_uuid, str) or not _UUID_RE.fullmatch(recording_uuid):
        raise ValueError(
            f"recording_uuid {recording_uuid!r} is not a canonical UUID "
            "(8-4-4-4-12 hexadecimal digits)"
        )
    if extension not in EXTENSIONS:
        raise ValueError(f"extension {extension!r} is not one of {', '.join(sorted(EXTENSIONS))}")
    if not isinstance(day, date):
        raise ValueError(f"day must be a date, not {type(day).__name__}")
    path = f"{day.year:04d}/{day.month:02d}/{day.day:02d}/{recording_uuid.lower()}.{extension}"
    return f"{clean_prefix}/{path}" if clean_prefix else path


def manifest_prefix(prefix: str) -> str:
    """Where custody manifests live under ``prefix`` (ends with ``/``)."""
    clean_prefix = validate_prefix(prefix)
    return f"{clean_prefix}/{MANIFEST_DIR}/" if clean_prefix else f"{MANIFEST_DIR}/"


def manifest_key(prefix: str, day: date, run_id: str, batch: str) -> str:
    """``{prefix}/_custody/manifests/{yyyy}/{mm}/{dd}/{run_id}-{batch}.jsonl``.

    ``run_id`` and ``batch`` must be plain segments (letters, digits, ``.``, ``_``, ``-``).
    """
    for name, value in (("run_id", run_id), ("batch", batch)):
        if not _SEGMENT_RE.fullmatch(value) or set(value) == {"."}:
            raise ValueError(f"{name} {value!r} is not a plain key segment")
    return (
        f"{manifest_prefix(prefix)}{day.year:04d}/{day.month:02d}/{day.day:02d}/"
        f"{run_id}-{batch}.jsonl"
    )


def sidecar_key(key: str) -> str:
    """The key of the custody sidecar an earlier version wrote: the object key plus
    ``.json`` (this version writes none)."""
    return key + SIDECAR_SUFFIX


def probe_key(clean_prefix: str) -> str:
    """The key of the write probe under an already validated prefix."""
    return f"{clean_prefix}/{PROBE_NAME}" if clean_prefix else PROBE_NAME


class KeyParts(NamedTuple):
    """What an object key says: the recording, its date and its extension."""

    recording_uuid: str
    day: date
    extension: str


def parse_object_key(prefix: str, key: str) -> KeyParts | None:
    """The inverse of :func:`object_key`; None for any other key (sidecars, the probe, strays)."""
    clean_prefix = validate_prefix(prefix)
    head = f"{clean_prefix}/" if clean_prefix else ""
    if not key.startswith(head):
        return None
    match = _KEY_TAIL_RE.fullmatch(key[len(head) :])
    if match is None or match["ext"] not in EXTENSIONS or match["uuid"] != match["uuid"].lower():
        return None
    try:
        day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None
    return KeyParts(match["uuid"], day, match["ext"])
