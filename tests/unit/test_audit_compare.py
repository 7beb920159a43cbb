"""The pure comparisons behind `audit verify`: ledger row vs HEAD / tags / metadata / sidecar."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from tenios_io.audit.verify import Difference, compare_metadata, compare_object, compare_sidecar
from tenios_io.ledger import Recording, State
from tenios_io.store import ObjectInfo

UNTIL = datetime(2033, 3, 7, tzinfo=UTC)
SHA = "ab" * 32
KEY = "recordings/2026/03/07/8101fcb3-3843-4db3-9829-f7ab586625fe.wav"
NOW = datetime(2026, 3, 7, 12, tzinfo=UTC)


def recording(**changes: Any) -> Recording:
    values: dict[str, Any] = {
        "recording_uuid": "8101fcb3-3843-4db3-9829-f7ab586625fe",
        "call_uuid": None,
        "source_hint": "api",
        "source_path": None,
        "state": State.ARCHIVED,
        "attempts": 1,
        "next_attempt_at": NOW,
        "last_error": None,
        "lease_token": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "discovered_at": NOW,
        "recorded_at": NOW,
        "source": "api",
        "content_type": "audio/wav",
        "size_bytes": 1234,
        "sha256": SHA,
        "s3_bucket": "archive",
        "s3_key": KEY,
        "s3_version_id": "v1",
        "retention_mode": "compliance",
        "retain_until": UNTIL,
        "legal_hold": False,
        "fetched_at": NOW,
        "archived_at": NOW,
        "last_verified_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Recording(**values)


def head(**changes: Any) -> ObjectInfo:
    values: dict[str, Any] = {
        "key": KEY,
        "version_id": "v1",
        "size": 1234,
        "sha256": SHA,
        "checksum_sha256": None,
        "content_type": "audio/wav",
        "last_modified": NOW,
        "lock_mode": "compliance",
        "retain_until": UNTIL,
        "legal_hold": False,
        "metadata": {"sha256": SHA},
    }
    values.update(changes)
    return ObjectInfo(**values)


def fields(differences: list[Difference]) -> list[tuple[str, Any, Any]]:
    return [(d.field, d.expected, d.found) for d in differences]


def test_matching_head_has_no_differences() -> None:
    assert compare_object(recording(), head()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"size": 1}, [("size", 1234, 1)]),
        ({"sha256": "cd" * 32, "metadata": {}}, [("sha256", SHA, "cd" * 32)]),
        ({"sha256": None, "metadata": {}}, [("sha256", SHA, None)]),
        ({"version_id": "v2"}, [("version_id", "v1", "v2")]),
        ({"lock_mode": "governance"}, [("retention_mode", "compliance", "governance")]),
        (
            {"retain_until": datetime(2030, 1, 1, tzinfo=UTC)},
            [("retain_until", "2033-03-07T00:00:00.000000Z", "2030-01-01T00:00:00.000000Z")],
        ),
        ({"legal_hold": True}, [("legal_hold", False, True)]),
    ],
)
def test_each_head_field_is_compared(changes: dict[str, Any], expected: list[Any]) -> None:
    assert fields(compare_object(recording(), head(**changes))) == expected


def test_metadata_that_contradicts_the_checksum_is_named() -> None:
    forged = head(metadata={"sha256": "ee" * 32})
    assert fields(compare_object(recording(), forged)) == [("metadata.sha256", SHA, "ee" * 32)]


def test_retention_and_hold_from_tags_where_there_is_no_lock() -> None:
    unlocked = head(lock_mode=None, retain_until=None)
    tags = {"retention-mode": "compliance", "retain-until": "2033-03-07T00:00:00Z"}
    assert compare_object(recording(), unlocked, tags) == []
    assert fields(compare_object(recording(legal_hold=True), unlocked, tags)) == [
        ("legal_hold", True, False)
    ]
    assert compare_object(recording(legal_hold=True), unlocked, {**tags, "legal-hold": "on"}) == []
    missing = fields(compare_object(recording(), unlocked, {}))
    assert [f for f, _, _ in missing] == ["retention_mode", "retain_until"]
    assert missing[0] == ("retention_mode", "compliance", "none")


def test_no_retention_expects_none() -> None:
    rec = recording(retention_mode=None, retain_until=None)
    assert compare_object(rec, head(lock_mode=None, retain_until=None), {}) == []


def test_sidecar() -> None:
    rec = recording()
    document = {
        "recording_uuid": rec.recording_uuid.upper(),  # uuids compare in any case
        "sha256": SHA,
        "size": 1234,
        "bucket": "archive",
        "key": KEY,
        "version_id": "v1",
        "retention_mode": "compliance",
        "retain_until": "2033-03-07T00:00:00Z",
        "legal_hold": False,
    }
    assert compare_sidecar(rec, document) == []
    assert compare_sidecar(dataclasses.replace(rec, legal_hold=True), document) == []
    changed = {**document, "size": 99, "retain_until": "2030-01-01T00:00:00Z"}
    assert [f for f, _, _ in fields(compare_sidecar(rec, changed))] == [
        "sidecar.size",
        "sidecar.retain_until",
    ]


def test_custody_metadata() -> None:
    call = "c0ffee00-0000-4000-8000-000000000001"
    rec = recording(call_uuid=call)
    metadata = {
        "recording-uuid": rec.recording_uuid.upper(),  # uuids compare in any case
        "call-uuid": call,
        "sha256": SHA,
        "size": "1234",
        "source": "api",
        "fetched-at": "2026-03-07T12:00:00.000000Z",
        "tool-version": "1.0",
    }
    assert compare_metadata(rec, metadata) == []
    shortened = {**metadata, "call-uuid": "sha256:" + hashlib.sha256(call.encode()).hexdigest()}
    assert compare_metadata(rec, shortened) == []
    assert compare_metadata(recording(call_uuid=None), {**metadata, "call-uuid": "x"}) == []
    changed = {**metadata, "size": "99", "recording-uuid": "other", "call-uuid": "x"}
    assert fields(compare_metadata(rec, changed)) == [
        ("metadata.recording-uuid", rec.recording_uuid, "other"),
        ("metadata.size", 1234, "99"),
        ("metadata.call-uuid", call, "x"),
    ]
    assert [f for f, _, _ in fields(compare_metadata(rec, {}))] == [
        "metadata.recording-uuid",
        "metadata.size",
        "metadata.call-uuid",
    ]


def test_difference_reads_as_a_sentence() -> None:
    assert str(Difference("size", 3, 4)) == "size: expected 3, found 4"
    assert Difference("size", 3, 4).to_dict() == {"field": "size", "expected": 3, "found": 4}
