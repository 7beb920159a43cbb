"""The custody chain's hashing and verification, without a database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tenios_io.custody import chain
from tenios_io.custody.chain import GENESIS, canonical_json, event_hash, format_time, verify
from tenios_io.custody.layout import event_entry


def _chain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row = {
            "seq": seq,
            "recording_uuid": f"00000000-0000-4000-8000-{seq:012d}",
            "event": "registered",
            "actor": "test",
            "occurred_at": "2026-01-01T00:00:00.000000Z",
            "details": canonical_json({"n": seq, "name": "Müller"}),
        }
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(prev, row)
        rows.append(row)
    return rows


def test_canonical_json_is_order_independent_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, "ü"]}) == '{"a":[1,"ü"],"b":1}'


def test_format_time_is_utc_with_microseconds() -> None:
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.000006Z"
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999),
        datetime(2026, 1, 1, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 6, 30, 20, 0, 0, 123, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 1, 5, 6, 7, 8, 9, tzinfo=ZoneInfo("Europe/London")),
        datetime(2026, 1, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(0), "Z")),
        datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
    ],
)
def test_format_time_is_what_strftime_wrote(moment: datetime) -> None:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    expected = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_time(moment) == expected


def test_intact_chain_verifies() -> None:
    report = verify(_chain(5))
    assert report.ok and report.events == 5 and report.head_seq == 5


def test_edited_details_are_named() -> None:
    rows = _chain(5)
    rows[2]["details"] = canonical_json({"n": 99, "name": "Müller"})
    report = verify(rows)
    assert not report.ok and report.first_broken_seq == 3 and "altered" in (report.problem or "")


def test_deleted_event_is_named() -> None:
    rows = _chain(5)
    del rows[1]
    report = verify(rows)
    assert not report.ok and report.first_broken_seq == 3


def test_reordered_events_are_detected() -> None:
    rows = _chain(5)
    rows[1], rows[2] = rows[2], rows[1]
    report = verify(rows)
    assert not report.ok and report.first_broken_seq == 3


def test_rehashed_edit_still_breaks_the_link_to_the_next_event() -> None:
    rows = _chain(4)
    rows[1]["details"] = canonical_json({"n": 42})
    rows[1]["hash"] = event_hash(rows[1]["prev_hash"], rows[1])
    report = verify(rows)
    assert not report.ok and report.first_broken_seq == 3


@pytest.mark.parametrize(
    ("recording_uuid", "actor", "details"),
    [
        ("8101fcb3-3843-4db3-9829-f7ab586625fe", "flow-run:abc", {}),
        (None, 'Jürgen "ops" \\ host\n', {"z": [1, {"b": None, "a": "ü"}], "a": 1.5}),
        ("x", "\u2028\ud7ff\x00", {"nested": {"k": True, "j": "\t"}}),
    ],
)
def test_chain_hash_is_the_hash_of_canonical_json(
    recording_uuid: str | None, actor: str, details: dict[str, object]
) -> None:
    # The sequencer builds the canonical JSON by hand for speed: it must be byte for
    # byte what canonical_json of the event dict gives (and so what verify-chain checks).
    body = {
        "seq": 42,
        "recording_uuid": recording_uuid,
        "event": "uploaded",
        "actor": actor,
        "occurred_at": "2026-12-03T01:02:03.000004Z",
        "details": details,
    }
    expected = hashlib.sha256(("ab" * 32 + chain.canonical_json(body)).encode()).hexdigest()
    got = chain.chain_hash(
        "ab" * 32,
        42,
        recording_uuid,
        "uploaded",
        actor,
        "2026-12-03T01:02:03.000004Z",
        chain.canonical_json(details),
    )
    assert got == expected


@pytest.mark.parametrize(
    "details", [{}, {"z": [1, {"b": None, "a": "ü\n"}], "a": 1.5}, {"k": '\u2028\x00"'}]
)
def test_canonical_entry_digest_is_entry_digest(details: dict[str, object]) -> None:
    # Writers digest their events without re-parsing details they just made canonical.
    args = ("8101fcb3-3843-4db3-9829-f7ab586625fe", "uploaded", "w\u00fc", "2026-12-03T01:02:03Z")
    assert chain.canonical_entry_digest(*args, chain.canonical_json(details)) == chain.entry_digest(
        *args, json.dumps(details, indent=2)
    )
    assert chain.canonical_entry_digest(None, "run_stopped", "w", "t", "{}") == chain.entry_digest(
        None, "run_stopped", "w", "t", "{ }"
    )


@pytest.mark.parametrize(
    ("call_uuid", "recorded_at", "source_path", "producer"),
    [
        (None, None, None, None),
        ("0b1e0c5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "2016-04-11T09:00:00.000000Z", None, "pbx-7"),
        (None, None, '/drop/a\\b\t"c"\nü.wav', None),
    ],
)
def test_registered_details_are_the_canonical_json_of_the_dict(
    call_uuid: str | None, recorded_at: str | None, source_path: str | None, producer: str | None
) -> None:
    from tenios_io.ledger.registration import registered_details

    expected = canonical_json(
        {
            "call_uuid": call_uuid,
            "recorded_at": recorded_at,
            "date_from": "discovered_at" if recorded_at is None else "recorded_at",
            "source_path": source_path,
            "producer": producer,
        }
    )
    assert registered_details(call_uuid, recorded_at, source_path, producer) == expected


@pytest.mark.parametrize(
    "stored",
    [
        '{"a":1}',
        '{"b": 2, "a": [1, 2.5, -0.0, 1e300, null, true, false]}',
        '{"name":"M\\u00fcller","emoji":"\\ud83d\\ude00","raw":"Müller","esc":"a\\"b\\\\c\\n"}',
        '{"nested":{"z":{"y":[{"b":1,"a":2}]}},"n":123456789012345678901234567890}',
        '{"x": NaN, "y": -Infinity}',
        '  {"a": 1}  ',
        '{"a":1}\n',
        '"text"',
        "42",
        "[]",
        "{}",
    ],
)
def test_recanonical_is_canonical_json_of_json_loads(stored: str) -> None:
    assert chain.recanonical(stored) == canonical_json(json.loads(stored))


@pytest.mark.parametrize(
    "stored", ["", "   ", "{", '{"a":1} x', '{"a":1}{"b":2}', "\ufeff{}", '{"a":"\\x"}', "[1,]"]
)
def test_recanonical_raises_what_json_loads_raises(stored: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(stored)
    with pytest.raises(json.JSONDecodeError) as raised:
        chain.recanonical(stored)
    assert (raised.value.msg, raised.value.pos) == (expected.value.msg, expected.value.pos)


@pytest.mark.parametrize(
    "row",
    [
        {"recording_uuid": "8101fcb3-3843-4db3-9829-f7ab586625fe", "details": '{"b": 1, "a": "ü"}'},
        {"recording_uuid": None, "details": '{"key":"x","nested":{"z":[1,2.5,null]}}'},
        {"recording_uuid": "r", "details": '{"quote":"a\\"b","nl":"x\\ny","u":"\\u00e9"}'},
    ],
)
def test_a_log_entry_is_the_events_canonical_json(row: dict[str, Any]) -> None:
    stored = {
        "seq": 7,
        "event": "ärchived",
        "actor": "cli:x",
        "occurred_at": "2026-01-01T00:00:00.000000Z",
        **row,
    }
    as_dict = {**stored, "details": json.loads(row["details"])}
    assert event_entry(stored) == canonical_json(as_dict).encode("utf-8")
    prev = "1" * 64
    assert (
        event_hash(prev, stored)
        == hashlib.sha256((prev + canonical_json(as_dict)).encode("utf-8")).hexdigest()
    )
