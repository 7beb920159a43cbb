"""A faster parser for the timestamps in S3's responses, for botocore's response parser.

botocore parses every timestamp of a response with ``dateutil.parser.parse`` (its
``parse_timestamp``), which is general and slow: 35-50 µs of CPU per value, two values
per HEAD of a locked object (``Last-Modified``, ``x-amz-object-lock-retain-until-date``).
S3 sends two formats, and the standard library parses both in 1-4 µs: the
HTTP date of ``Last-Modified`` (RFC 7231, ``Thu, 03 Dec 2026 11:20:00 GMT``) and
ISO 8601 in the lock headers and XML bodies (``2031-01-01T00:00:00.000Z``).  Hand
written because neither botocore nor the standard library offers this choice; it is
a dispatcher over two stdlib parsers, and everything else goes to botocore's own.

Only results in UTC are taken from the fast path (as ``datetime.timezone.utc``
rather than dateutil's ``tzutc()``: the same instant and the same fields, and every
caller compares instants or converts with ``astimezone``).  A value without a zone,
with another offset, a number (epoch seconds) or anything the stdlib refuses goes to
:func:`botocore.utils.parse_timestamp`, so its result is exactly botocore's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

from botocore.utils import parse_timestamp as botocore_parse_timestamp

__all__ = ["parse_timestamp"]

_ZERO: Final = timedelta(0)


def parse_timestamp(value: Any) -> datetime:
    """``value`` (a timestamp from a response) as a datetime, as botocore would parse it."""
    if isinstance(value, str) and value:
        parsed = _fast(value)
        if parsed is not None:
            return parsed
    result: datetime = botocore_parse_timestamp(value)
    return result


def _fast(value: str) -> datetime | None:
    """``value`` in UTC if it is an ISO 8601 or HTTP date in UTC; else None."""
    try:
        if value[0].isdigit():
            parsed = datetime.fromisoformat(value)
        else:
            parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.utcoffset() != _ZERO:  # None (no zone) or another offset: botocore decides
        return None
    return parsed.replace(tzinfo=UTC)
