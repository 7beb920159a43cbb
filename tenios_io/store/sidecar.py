"""The custody sidecar: its document, as canonical JSON, and reading one back.

The sidecar ``{key}.json`` sits next to its recording and carries the object's
identity, checksum and retention plus the caller's custody fields, which may not
contradict the object.  Botocore's errors pass through untranslated: the store
calls these inside its translation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

from tenios_io.exceptions import ArchiveConflict, VerificationFailed
from tenios_io.store.bucket import Bucket
from tenios_io.store.results import ArchivedObject

__all__ = [
    "MAX_SIDECAR_BYTES",
    "accept_existing_sidecar",
    "canonical_json",
    "read_json",
    "sidecar_document",
]

MAX_SIDECAR_BYTES: Final = 1024 * 1024
"""A sidecar larger than this is not one."""


def sidecar_document(
    obj: ArchivedObject, fields: Mapping[str, Any], tool_version: str
) -> dict[str, Any]:
    """``fields`` (which must carry ``custody_event_hash`` and ``fetched_at``) plus what
    the store knows about ``obj``; ValueError if a field contradicts it."""
    missing = {"custody_event_hash", "fetched_at"} - set(fields)
    if missing:
        raise ValueError(f"sidecar fields lack {', '.join(sorted(missing))}")
    own: dict[str, Any] = {
        "recording_uuid": obj.recording_uuid,
        "call_uuid": obj.call_uuid,
        "sha256": obj.sha256,
        "size": obj.size,
        "content_type": obj.content_type,
        "source": obj.source,
        "bucket": obj.bucket,
        "key": obj.key,
        "version_id": obj.version_id,
        "retention_mode": obj.retention_mode,
        "retain_until": obj.retain_until,
        "retention_enforced": obj.retention_enforced,
        "legal_hold": obj.legal_hold,
        "tool_version": tool_version,
    }
    for name, value in fields.items():
        if name in own and not _same_value(name, value, own[name]):
            raise ValueError(
                f"sidecar field {name}={value!r} contradicts the archived object ({own[name]!r})"
            )
    return {"archived_at": datetime.now(UTC), **fields, **own}


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, ASCII only: the same dict, the same bytes."""
    return json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=_json_default,
    ).encode("ascii")


def accept_existing_sidecar(bucket: Bucket, obj: ArchivedObject, key: str) -> str:
    """The sidecar at ``key`` exists: accept it if it describes ``obj``'s bytes, else
    ArchiveConflict (a crashed earlier attempt wrote the former)."""
    existing = read_json(bucket, key, obj.recording_uuid)
    found_sha = existing.get("sha256") if isinstance(existing, dict) else None
    found_size = existing.get("size") if isinstance(existing, dict) else None
    if found_sha == obj.sha256 and found_size == obj.size:
        bucket.log.info("sidecar s3://%s/%s was already written", bucket.name, key)
        return key
    raise ArchiveConflict(
        f"sidecar s3://{bucket.name}/{key} already exists and describes other bytes: "
        f"SHA-256 {found_sha or '(unreadable)'} ({found_size} bytes) where the object has "
        f"{obj.sha256} ({obj.size} bytes).  Nothing was overwritten.",
        recording_uuid=obj.recording_uuid,
        s3_key=key,
        expected_sha256=obj.sha256,
        found_sha256=found_sha if isinstance(found_sha, str) else None,
    )


def read_json(bucket: Bucket, key: str, recording_uuid: str | None) -> Any:
    """GET ``key`` (at most :data:`MAX_SIDECAR_BYTES`) and parse it; VerificationFailed if
    it is too large or not JSON."""
    response = bucket.client.get_object(Bucket=bucket.name, Key=key)
    body = response["Body"]
    try:
        raw = body.read(MAX_SIDECAR_BYTES + 1)
    finally:
        body.close()
    if len(raw) > MAX_SIDECAR_BYTES:
        raise VerificationFailed(
            f"s3://{bucket.name}/{key} is larger than a sidecar can be",
            recording_uuid=recording_uuid,
            s3_key=key,
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationFailed(
            f"s3://{bucket.name}/{key} is not valid JSON ({exc})",
            recording_uuid=recording_uuid,
            s3_key=key,
        ) from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give sidecar times in UTC")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _same_value(name: str, given: Any, own: Any) -> bool:
    """Whether a caller's sidecar field agrees with the store's (UUIDs in any case)."""
    given, own = _jsonable(given), _jsonable(own)
    if name.endswith("_uuid") and isinstance(given, str) and isinstance(own, str):
        return given.lower() == own.lower()
    return bool(given == own)


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return _jsonable(value)
    raise TypeError(f"cannot put {type(value).__name__} into a sidecar")
