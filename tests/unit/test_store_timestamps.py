"""The response timestamp parser: S3's two formats on the fast path, in UTC, the same
instants as botocore's own parser; everything else is botocore's own result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from dateutil.tz import tzutc

from tenios_io.store.timestamps import parse_timestamp

#: What S3 (and moto) send: Last-Modified (HTTP date), the lock header and XML bodies (ISO).
S3_VALUES = [
    ("Thu, 03 Dec 2026 11:20:07 GMT", datetime(2026, 12, 3, 11, 20, 7, tzinfo=UTC)),
    ("Sun, 01 Jan 2034 00:00:00 GMT", datetime(2034, 1, 1, tzinfo=UTC)),
    ("2031-01-01T00:00:00Z", datetime(2031, 1, 1, tzinfo=UTC)),
    ("2031-01-01T00:00:00.000Z", datetime(2031, 1, 1, tzinfo=UTC)),
    ("2026-12-03T11:20:07.123Z", datetime(2026, 12, 3, 11, 20, 7, 123000, tzinfo=UTC)),
    ("2026-12-03T11:20:07.123456+00:00", datetime(2026, 12, 3, 11, 20, 7, 123456, tzinfo=UTC)),
    # Not from S3, but UTC and read alike by both parsers:
    ("2031-01-01T00:00:00.123456789Z", datetime(2031, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ("Thursday, 03-Dec-26 11:20:07 GMT", datetime(2026, 12, 3, 11, 20, 7, tzinfo=UTC)),
    ("Thu, 03 Dec 2026 11:20:07 +0000", datetime(2026, 12, 3, 11, 20, 7, tzinfo=UTC)),
]


@pytest.mark.parametrize(("value", "expected"), S3_VALUES)
def test_s3_formats_parse_to_utc_as_botocore_does(value: str, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC
    theirs = botocore_parse_timestamp(value)
    assert parsed == theirs
    # The same fields too, not only the same instant: a caller formatting them sees no change.
    assert parsed.replace(tzinfo=None) == theirs.replace(tzinfo=None)
    assert parsed.utcoffset() == theirs.utcoffset() == timedelta(0)
    assert parsed.isoformat() == theirs.isoformat()


@pytest.mark.parametrize(
    "value",
    [
        "2031-01-01T02:00:00+02:00",  # another offset: botocore keeps it
        "Thu, 03 Dec 2026 13:20:07 +0200",
        "2031-01-01T00:00:00",  # no zone: botocore's (naive) answer
        "2031-01-01",
        "1700000000",  # epoch seconds, as a string
        "1700000000.5",
        "Thu, 03 Dec 2026 11:20:07 -0000",  # "unknown zone" in RFC 5322: naive from email
    ],
)
def test_anything_else_is_botocores_answer(value: str) -> None:
    parsed = parse_timestamp(value)
    theirs = botocore_parse_timestamp(value)
    assert parsed == theirs
    assert type(parsed.tzinfo) is type(theirs.tzinfo)  # botocore's, not ours
    assert parsed.utcoffset() == theirs.utcoffset()


@pytest.mark.parametrize("value", [1700000000, 1700000000.25])
def test_numbers_are_epoch_seconds_as_botocore_reads_them(value: float) -> None:
    parsed = parse_timestamp(value)
    assert parsed == botocore_parse_timestamp(value)
    assert parsed == datetime.fromtimestamp(value, UTC)


def test_an_offset_keeps_its_instant() -> None:
    parsed = parse_timestamp("2031-01-01T02:00:00+02:00")
    assert parsed == datetime(2031, 1, 1, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("value", ["", "not a date", "Thu, 99 Foo 2026 11:20:07 GMT"])
def test_unreadable_values_fail_as_botocore_fails(value: str) -> None:
    with pytest.raises(ValueError) as ours:
        parse_timestamp(value)
    with pytest.raises(ValueError) as theirs:
        botocore_parse_timestamp(value)
    assert str(ours.value) == str(theirs.value)


def test_results_compare_and_convert_with_botocores() -> None:
    """What the store does with them: compare with our own UTC datetimes and with
    dateutil's tzutc() ones, subtract, convert."""
    ours = parse_timestamp("Thu, 03 Dec 2026 11:20:07 GMT")
    dateutil_utc = datetime(2026, 12, 3, 11, 20, 7, tzinfo=tzutc())
    assert ours == dateutil_utc
    assert (ours - dateutil_utc).total_seconds() == 0
    assert ours.astimezone(UTC) == ours
    assert ours < datetime(2026, 12, 3, 11, 20, 8, tzinfo=UTC)
