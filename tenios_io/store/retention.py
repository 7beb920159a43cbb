"""How one write is protected: Object Lock headers, a legal hold header, or tags.

Without Object Lock the retention is recorded as the tags ``retention-mode`` and
``retain-until`` (and ``legal-hold``), which are a record, not a protection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tenios_io.store.results import LockMode, RetentionMode

__all__ = [
    "NO_RETENTION",
    "Retention",
    "iso",
    "lock_mode_for",
    "parse_iso",
    "retention_mode_of",
    "same_instant",
]


@dataclass(frozen=True)
class Retention:
    """How one upload is protected: lock headers, legal hold header, or tags."""

    mode: RetentionMode
    retain_until: datetime | None
    lock_mode: LockMode | None  # set when Object Lock headers are sent
    legal_hold: bool
    legal_hold_header: bool
    tags: dict[str, str]


NO_RETENTION = Retention("none", None, None, False, False, {})
"""Neither a lock, nor a hold, nor tags."""


def lock_mode_for(mode: RetentionMode) -> LockMode | None:
    """S3's Object Lock mode for a retention mode (None for ``none``)."""
    if mode == "compliance":
        return "COMPLIANCE"
    if mode == "governance":
        return "GOVERNANCE"
    return None


def retention_mode_of(value: str | None) -> RetentionMode:
    """A ``retention-mode`` tag's value as a retention mode (``none`` if unknown)."""
    if value == "compliance":
        return "compliance"
    if value == "governance":
        return "governance"
    return "none"


def iso(moment: datetime) -> str:
    """UTC, to the second, with ``Z``: how ``retain-until`` tags are written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    """A ``retain-until`` tag's value (naive means UTC); None if absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def same_instant(found: datetime | None, expected: datetime | None) -> bool:
    """Whether two retain-until dates agree to within a second (naive means UTC)."""
    if found is None or expected is None:
        return found is expected
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return abs((found - expected).total_seconds()) < 1
