"""`audit verify` logic against moto server and both ledger backends: every difference between
the bucket and the ledger is found, named, and recorded in the custody chain."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tenios_io.audit import VerifyStatus, select_recordings, verify_archive
from tenios_io.audit.verify import check_recording
from tenios_io.custody.chain import format_time
from tenios_io.store import sidecar_key
from tests.integration.test_audit_support import AuditWorld, make_world, recent, versions_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def world(database_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(database_url, s3_client, locked_bucket, retention_mode="governance")
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def plain_world(database_url: str, s3_client: S3Client, plain_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(database_url, s3_client, plain_bucket, retention_mode="compliance")
    yield w
    w.ledger.engine.dispose()


def fields_of(world: AuditWorld, recording_uuid: str) -> set[str]:
    rec = world.get(recording_uuid)
    result = check_recording(world.ledger, world.store, rec)
    return {d.field for d in result.differences}


def test_untouched_archive_verifies_and_is_recorded(world: AuditWorld) -> None:
    ids = world.archive(3, recorded_at=recent(2))
    before = {k: world.get(k).last_verified_at for k in ids}
    world.clock.advance(hours=1)
    selection = select_recordings(world.ledger, "all")
    report = verify_archive(world.ledger, world.store, selection.recordings, deep=True)
    assert report.ok and (report.checked, report.verified) == (3, 3)
    for key in ids:
        assert world.events(key)[-1] == "verified"
        assert world.event_details(key, "verified")[-1]["method"] == "audit-deep"
        assert world.get(key).last_verified_at == world.clock.now != before[key]
    assert world.ledger.verify_chain().ok


def test_a_delete_marker_hiding_the_archived_version_is_a_discrepancy(world: AuditWorld) -> None:
    (key,) = world.archive(1)
    rec = world.get(key)
    world.s3.delete_object(Bucket=world.bucket, Key=rec.s3_key)  # a delete marker on top
    result = check_recording(world.ledger, world.store, rec)
    assert result.status is VerifyStatus.DISCREPANCY
    (diff,) = result.differences
    assert diff.field == "current_version" and diff.expected == rec.s3_version_id
    assert "delete marker" in diff.found


def test_a_new_version_on_top_is_a_discrepancy(world: AuditWorld) -> None:
    (key,) = world.archive(1)
    rec = world.get(key)
    put = world.s3.put_object(Bucket=world.bucket, Key=rec.s3_key, Body=b"other bytes")
    result = check_recording(world.ledger, world.store, rec)
    assert [(d.field, d.found) for d in result.differences] == [
        ("current_version", put["VersionId"])
    ]


def test_object_deleted_in_a_plain_bucket_is_missing(plain_world: AuditWorld) -> None:
    (key,) = plain_world.archive(1)
    rec = plain_world.get(key)
    plain_world.s3.delete_object(Bucket=plain_world.bucket, Key=rec.s3_key)
    report = verify_archive(plain_world.ledger, plain_world.store, [rec])
    (result,) = report.discrepancies
    assert [(d.field, d.found) for d in result.differences] == [("object", "missing")]
    (details,) = plain_world.event_details(key, "discrepancy")
    assert details["differences"][0]["field"] == "object"
    assert plain_world.get(key).last_verified_at == rec.last_verified_at  # not verified


def test_object_replaced_in_a_plain_bucket_differs_in_size_and_sha256(
    plain_world: AuditWorld,
) -> None:
    (key,) = plain_world.archive(1)
    rec = plain_world.get(key)
    plain_world.s3.put_object(Bucket=plain_world.bucket, Key=rec.s3_key, Body=b"forged")
    fields = fields_of(plain_world, key)
    assert {"size", "sha256", "retention_mode", "retain_until"} <= fields


def test_forged_metadata_passes_head_but_not_the_deep_check(plain_world: AuditWorld) -> None:
    """Same size, the original SHA-256 claimed in metadata, other bytes: only re-hashing sees it."""
    (key,) = plain_world.archive(1, size=3000)
    rec = plain_world.get(key)
    tags = plain_world.s3.get_object_tagging(Bucket=plain_world.bucket, Key=rec.s3_key)["TagSet"]
    metadata = plain_world.s3.head_object(Bucket=plain_world.bucket, Key=rec.s3_key)["Metadata"]
    forged = b"RIFF" + bytes(2996)
    plain_world.s3.put_object(
        Bucket=plain_world.bucket,
        Key=rec.s3_key,
        Body=forged,
        Metadata=metadata,  # the original's custody metadata, SHA-256 included
        Tagging="&".join(f"{t['Key']}={t['Value']}" for t in tags),
    )
    head_only = check_recording(plain_world.ledger, plain_world.store, rec)
    assert head_only.status is VerifyStatus.VERIFIED
    deep = check_recording(plain_world.ledger, plain_world.store, rec, deep=True)
    assert [(d.field, d.found) for d in deep.differences] == [
        ("content.sha256", hashlib.sha256(forged).hexdigest())
    ]


def test_the_object_carries_its_custody_facts_and_no_sidecar(world: AuditWorld) -> None:
    (key,) = world.archive(1)
    rec = world.get(key)
    assert rec.s3_key is not None and rec.fetched_at is not None
    assert versions_of(world.s3, world.bucket, sidecar_key(rec.s3_key)) == []
    head = world.s3.head_object(Bucket=world.bucket, Key=rec.s3_key)
    assert {
        name: head["Metadata"][name]
        for name in ("recording-uuid", "sha256", "size", "source", "fetched-at")
    } == {
        "recording-uuid": key,
        "sha256": rec.sha256,
        "size": str(rec.size_bytes),
        "source": "api",
        "fetched-at": format_time(rec.fetched_at),
    }
    assert head["Metadata"]["codec"] == "pcm"
    assert check_recording(world.ledger, world.store, rec).status is VerifyStatus.VERIFIED


def test_an_archive_of_an_earlier_version_with_sidecars_verifies(world: AuditWorld) -> None:
    ids = world.archive(2, earlier_version=True)
    rec = world.get(ids[0])
    assert rec.s3_key is not None
    assert "fetched-at" not in world.s3.head_object(Bucket=world.bucket, Key=rec.s3_key)["Metadata"]
    assert len(versions_of(world.s3, world.bucket, sidecar_key(rec.s3_key))) == 1
    report = verify_archive(world.ledger, world.store, [world.get(k) for k in ids], deep=True)
    assert report.ok and report.verified == 2
    # Its sidecar is still read: one that contradicts the ledger is a discrepancy ...
    world.sql("UPDATE recordings SET size_bytes = 1 WHERE recording_uuid = :k", k=ids[0])
    assert {"size", "sidecar.size"} <= fields_of(world, ids[0])


def test_an_earlier_version_object_without_its_sidecar_is_a_discrepancy(
    plain_world: AuditWorld,
) -> None:
    (key,) = plain_world.archive(1, earlier_version=True)
    rec = plain_world.get(key)
    assert rec.s3_key is not None
    plain_world.s3.delete_object(Bucket=plain_world.bucket, Key=sidecar_key(rec.s3_key))
    result = check_recording(plain_world.ledger, plain_world.store, rec)
    assert [(d.field, d.found) for d in result.differences] == [("custody_metadata", "missing")]


def test_custody_metadata_contradicting_the_ledger_is_a_discrepancy(world: AuditWorld) -> None:
    (key,) = world.archive(1)
    world.sql("UPDATE recordings SET size_bytes = 7 WHERE recording_uuid = :k", k=key)
    assert fields_of(world, key) == {"size", "metadata.size"}


def test_ledger_edited_behind_the_archive_is_caught(world: AuditWorld) -> None:
    """Someone changes the ledger's checksum and retention: the bucket disagrees."""
    (key,) = world.archive(1)
    world.sql(
        "UPDATE recordings SET sha256 = :sha, retain_until = :until WHERE recording_uuid = :k",
        sha="0" * 64,
        until=recent(1),
        k=key,
    )
    fields = fields_of(world, key)
    assert {"sha256", "retain_until"} <= fields


def test_legal_hold_mismatch_is_a_discrepancy(world: AuditWorld) -> None:
    (key,) = world.archive(1)
    rec = world.get(key)
    assert rec.s3_key is not None
    world.s3.put_object_legal_hold(
        Bucket=world.bucket, Key=rec.s3_key, VersionId=rec.s3_version_id, LegalHold={"Status": "ON"}
    )
    result = check_recording(world.ledger, world.store, rec)
    assert [(d.field, d.expected, d.found) for d in result.differences] == [
        ("legal_hold", False, True)
    ]
    world.s3.put_object_legal_hold(
        Bucket=world.bucket,
        Key=rec.s3_key,
        VersionId=rec.s3_version_id,
        LegalHold={"Status": "OFF"},
    )


def test_rolling_covers_the_whole_archive_within_the_cycle(world: AuditWorld) -> None:
    ids = set(world.archive(10))
    cycle = 4
    seen: list[set[str]] = []
    for _night in range(cycle):
        world.clock.advance(days=1)
        selection = select_recordings(world.ledger, "rolling", cycle_days=cycle)
        assert selection.count == math.ceil(10 / cycle) == 3
        chosen = list(selection.recordings)
        report = verify_archive(world.ledger, world.store, chosen)
        assert report.ok
        seen.append({r.recording_uuid for r in chosen})
    assert set().union(*seen) == ids  # every recording verified within the cycle
    assert not seen[0] & seen[1] and not seen[1] & seen[2]  # oldest first, no repeats
    weekly = select_recordings(world.ledger, "rolling", cycle_days=30, every_days=7)
    assert weekly.count == math.ceil(10 * 7 / 30)


def test_sample_and_since(world: AuditWorld) -> None:
    world.archive(10)
    sample = select_recordings(world.ledger, "sample", percent=25)
    assert sample.count == 3 and len(list(sample.recordings)) == 3
    world.clock.advance(days=2)
    newer = world.archive(2)
    since = select_recordings(world.ledger, "all", since=world.clock.now)
    assert since.count == 2 and {r.recording_uuid for r in since.recordings} == set(newer)


def test_a_recording_of_another_bucket_is_not_checked_here(world: AuditWorld) -> None:
    (key,) = world.archive(1)
    world.sql("UPDATE recordings SET s3_bucket = 'elsewhere' WHERE recording_uuid = :k", k=key)
    report = verify_archive(world.ledger, world.store, [world.get(key)])
    (error,) = report.errors
    assert error.status is VerifyStatus.ERROR and "elsewhere" in (error.error or "")
    assert world.events(key)[-1] == "archived"  # nothing recorded
