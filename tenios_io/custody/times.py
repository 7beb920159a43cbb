"""Reading and writing the audit's timestamps: ISO 8601 UTC, as the custody chain stores them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenios_io.custody.chain import format_time


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ``2033-03-07T00:00:00Z`` (and other ISO forms); None if
    ``value`` is empty or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """The custody chain's form of a time (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), or None."""
    return format_time(moment) if moment is not None else None
