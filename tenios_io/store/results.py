"""What the store reports: bucket status, archived objects, object versions, listings.

Also the literals that describe retention and encryption settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

__all__ = [
    "RETENTION_MODES",
    "ArchivedObject",
    "BucketStatus",
    "LockMode",
    "ObjectInfo",
    "ObjectSummary",
    "ObjectVersion",
    "RetentionMode",
    "SseMode",
]

RetentionMode = Literal["compliance", "governance", "none"]
"""The retention a store applies (``none``: no Object Lock period, no retention tags)."""
LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
"""S3's spelling of an Object Lock mode."""
SseMode = Literal["AES256", "aws:kms"]
"""Server-side encryption a store asks for."""
RETENTION_MODES: Final = ("compliance", "governance", "none")


@dataclass(frozen=True)
class BucketStatus:
    """What :meth:`ArchiveStore.check` found; ``warnings`` say what to improve."""

    bucket: str
    versioning: str
    """``Enabled``, ``Suspended`` or ``Disabled`` (never enabled)."""
    object_lock: bool
    default_retention: str | None
    """The bucket's default Object Lock rule, e.g. ``GOVERNANCE 30 days``, if any."""
    probe_key: str
    retention_mode: RetentionMode
    """The retention this store was configured to apply."""
    warnings: tuple[str, ...] = ()

    @property
    def retention_enforced(self) -> bool:
        """Whether archived objects get Object Lock (not just tags)."""
        return self.object_lock and self.retention_mode != "none"


@dataclass(frozen=True)
class ArchivedObject:
    """A recording that is in the bucket and verified by read-back."""

    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int
    content_type: str
    retention_mode: RetentionMode
    retain_until: datetime | None
    """UTC; None when no retention applies."""
    retention_enforced: bool
    """True: Object Lock protects the object; False: retention is only recorded as tags."""
    already_archived: bool
    """True when an earlier attempt had already put these exact bytes there."""
    legal_hold: bool = False
    recording_uuid: str | None = None
    call_uuid: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ObjectInfo:
    """One object version as HEAD (and optionally the tagging API) sees it."""

    key: str
    version_id: str | None
    size: int
    sha256: str | None
    """Hex: from the full-object checksum when S3 has one, else from our metadata."""
    checksum_sha256: str | None
    """The raw ``x-amz-checksum-sha256`` (base64; ``…-N`` for a multipart composite)."""
    content_type: str | None
    last_modified: datetime | None
    lock_mode: Literal["compliance", "governance"] | None
    retain_until: datetime | None
    legal_hold: bool
    metadata: dict[str, str] = field(default_factory=dict)
    """User metadata, percent-decoded."""
    tags: dict[str, str] | None = None
    """Only when asked for (one more request)."""


@dataclass(frozen=True)
class ObjectSummary:
    """One entry of a listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None


@dataclass(frozen=True)
class ObjectVersion:
    """One entry of a version listing: an object version or a delete marker."""

    key: str
    version_id: str | None
    """None for the ``null`` version (written while the bucket was not versioned)."""
    is_latest: bool
    """Whether this is what a plain GET of the key answers (a delete marker: 404)."""
    delete_marker: bool
    size: int
    """0 for a delete marker."""
    etag: str
    """Empty for a delete marker."""
    last_modified: datetime | None
