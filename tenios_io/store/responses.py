"""Reading S3's answers: version ids, checksums, and a HEAD as :class:`ObjectInfo`."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tenios_io.store.results import ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

__all__ = ["b64", "is_composite", "object_info", "version_arg", "version_of"]


def object_info(key: str, head: HeadObjectOutputTypeDef) -> ObjectInfo:
    """What a HEAD response says about one object version."""
    metadata = {name: unquote(value) for name, value in head.get("Metadata", {}).items()}
    checksum = head.get("ChecksumSHA256")
    sha256 = metadata.get("sha256") or None
    if checksum and not is_composite(head):
        try:
            # A full-object checksum is S3's own word on the bytes: it wins over ours.
            sha256 = base64.b64decode(checksum, validate=True).hex()
        except ValueError:
            sha256 = None
    lock_mode = head.get("ObjectLockMode")
    until = head.get("ObjectLockRetainUntilDate")
    return ObjectInfo(
        key=key,
        version_id=version_of(head),
        size=head.get("ContentLength", 0),
        sha256=sha256,
        checksum_sha256=checksum,
        content_type=head.get("ContentType"),
        last_modified=head.get("LastModified"),
        lock_mode="compliance"
        if lock_mode == "COMPLIANCE"
        else "governance"
        if lock_mode == "GOVERNANCE"
        else None,
        retain_until=until.astimezone(UTC) if until else None,
        legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        metadata=metadata,
    )


def is_composite(head: HeadObjectOutputTypeDef) -> bool:
    """Whether the object's checksum covers its parts' checksums rather than its bytes.

    S3 marks it (``ChecksumType: COMPOSITE``, a ``-N`` suffix); some stand-ins do not,
    but a multipart upload's ETag always ends in ``-N``.
    """
    checksum = head.get("ChecksumSHA256", "")
    return (
        "-" in checksum
        or head.get("ChecksumType") == "COMPOSITE"
        or re.search(r"-\d+\"?$", head.get("ETag", "")) is not None
    )


def version_of(response: Mapping[str, Any]) -> str | None:
    """The response's version id; None for an unversioned object (S3 may say "null")."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def version_arg(version_id: str | None) -> dict[str, Any]:
    """``VersionId=…`` for a call, or nothing (the latest version)."""
    return {"VersionId": version_id} if version_id else {}


def b64(digest: bytes) -> str:
    """A digest as S3's checksum headers want it."""
    return base64.b64encode(digest).decode("ascii")
