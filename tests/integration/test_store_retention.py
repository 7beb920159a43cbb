"""Retention: Object Lock when the bucket has it, tags (and one warning) when it does not."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tenios_io.exceptions import BucketNotUsable, RetentionNotApplicable
from tenios_io.recording.spool import Spooled
from tenios_io.store import ArchiveStore
from tests.fixtures.moto import SAMPLE_DAY, archive_spooled, object_versions, sample_wav

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
SAMPLE_MIDNIGHT = datetime(2024, 3, 7, tzinfo=UTC)


def tags_of(client: S3Client, bucket: str, key: str) -> dict[str, str]:
    tag_set = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def test_compliance_lock_is_applied_and_deleting_the_version_is_refused(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(locked_bucket, retention_mode="compliance", retention_days=2557)
    obj = archive_spooled(store, make_spooled(sample_wav(3000)), str(uuid.uuid4()))

    assert (obj.retention_mode, obj.retention_enforced) == ("compliance", True)
    assert obj.retain_until == SAMPLE_MIDNIGHT + timedelta(days=2557)
    head = s3_client.head_object(Bucket=locked_bucket, Key=obj.key, VersionId=obj.version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == obj.retain_until
    assert "TagCount" not in head  # the lock is the record; no tags needed

    with pytest.raises(BucketNotUsable, match="s3:DeleteObjectVersion") as caught:
        store.delete_version(obj.key, obj.version_id)
    assert caught.value.s3_key == obj.key
    with pytest.raises(BucketNotUsable):  # COMPLIANCE cannot be bypassed by anyone
        store.delete_version(obj.key, obj.version_id, bypass_governance=True)
    assert [v["VersionId"] for v in object_versions(s3_client, locked_bucket, obj.key)] == [
        obj.version_id
    ]


def test_governance_lock_yields_only_to_an_explicit_bypass(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(locked_bucket, retention_mode="governance", retention_days=365 * 20)
    obj = archive_spooled(store, make_spooled(sample_wav(3000)), str(uuid.uuid4()))
    info = store.head(obj.key, obj.version_id)
    assert info is not None
    assert (info.lock_mode, info.retain_until) == ("governance", obj.retain_until)

    with pytest.raises(BucketNotUsable):
        store.delete_version(obj.key, obj.version_id)
    store.delete_version(obj.key, obj.version_id, bypass_governance=True)
    assert object_versions(s3_client, locked_bucket, obj.key) == []


def test_multipart_upload_gets_the_lock_too(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(
        locked_bucket,
        retention_mode="compliance",
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
    )
    obj = archive_spooled(
        store, make_spooled(sample_wav(7 * MiB)), str(uuid.uuid4()), legal_hold=True
    )
    head = s3_client.head_object(Bucket=locked_bucket, Key=obj.key, VersionId=obj.version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == obj.retain_until
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert len(object_versions(s3_client, locked_bucket, obj.key)) == 1


def test_plain_bucket_records_retention_as_tags_and_warns_once(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store(plain_bucket, retention_mode="compliance", retention_days=10)
    with caplog.at_level(logging.WARNING, logger="tenios_io.store"):
        first = archive_spooled(store, make_spooled(sample_wav(100, 1)), str(uuid.uuid4()))
        archive_spooled(store, make_spooled(sample_wav(100, 2)), str(uuid.uuid4()))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert plain_bucket in warnings[0].getMessage()
    assert "NOT enforced" in warnings[0].getMessage()
    assert (first.retention_mode, first.retention_enforced) == ("compliance", False)
    assert first.retain_until == SAMPLE_MIDNIGHT + timedelta(days=10)
    assert tags_of(s3_client, plain_bucket, first.key) == {
        "retention-mode": "compliance",
        "retain-until": "2024-03-17T00:00:00Z",
    }
    assert "ObjectLockMode" not in s3_client.head_object(Bucket=plain_bucket, Key=first.key)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tenios_io.store"):  # a new store warns again
        archive_spooled(
            make_store(plain_bucket, retention_mode="governance"),
            make_spooled(sample_wav(100, 3)),
            str(uuid.uuid4()),
        )
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_retention_none_sets_neither_lock_nor_tags(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(locked_bucket, retention_mode="none")
    obj = archive_spooled(store, make_spooled(sample_wav(100)), str(uuid.uuid4()))
    head = s3_client.head_object(Bucket=locked_bucket, Key=obj.key)
    assert "ObjectLockMode" not in head and "TagCount" not in head
    assert (obj.retention_mode, obj.retain_until, obj.retention_enforced) == ("none", None, False)


def test_per_recording_retention_override(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
) -> None:
    store = make_store(locked_bucket, retention_mode="governance")
    obj = archive_spooled(
        store,
        make_spooled(sample_wav(100)),
        str(uuid.uuid4()),
        key_date=date(2030, 1, 1),
        retention_days=3650,
    )
    assert obj.retain_until == datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=3650)
    assert obj.retention_enforced


def test_retention_already_over_is_refused_not_archived_unlocked(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    """A recording whose retention ended: S3 refuses a past retain-until date, and an
    object archived without the lock its mode promises must never happen silently
    (issue 25): nothing is uploaded."""
    store = make_store(locked_bucket, retention_mode="compliance", retention_days=30)
    key = str(uuid.uuid4())
    with pytest.raises(RetentionNotApplicable, match="ended 2015-07-01") as raised:
        archive_spooled(store, make_spooled(sample_wav(100)), key, key_date=date(2015, 6, 1))
    assert raised.value.s3_key is not None and key in raised.value.s3_key
    listed = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=raised.value.s3_key)
    assert listed.get("Versions", []) == []


def test_legal_hold_on_put_and_on_demand(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
) -> None:
    store = make_store(locked_bucket, retention_mode="governance")
    held = archive_spooled(
        store, make_spooled(sample_wav(100, 1)), str(uuid.uuid4()), legal_hold=True
    )
    free = archive_spooled(store, make_spooled(sample_wav(100, 2)), str(uuid.uuid4()))
    assert held.legal_hold and not free.legal_hold

    def hold(obj_key: str, version: str | None) -> bool:
        info = store.head(obj_key, version)
        assert info is not None
        return info.legal_hold

    assert hold(held.key, held.version_id) and not hold(free.key, free.version_id)
    store.set_legal_hold(free.key, free.version_id, True)
    store.set_legal_hold(held.key, held.version_id, False)
    assert hold(free.key, free.version_id) and not hold(held.key, held.version_id)
    with pytest.raises(BucketNotUsable):  # a held version cannot go, even with a bypass
        store.delete_version(free.key, free.version_id or "", bypass_governance=True)


def test_legal_hold_on_a_plain_bucket_is_a_tag(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket, retention_mode="governance", retention_days=1)
    obj = archive_spooled(store, make_spooled(sample_wav(100)), str(uuid.uuid4()), legal_hold=True)
    assert tags_of(s3_client, plain_bucket, obj.key)["legal-hold"] == "on"

    store.set_legal_hold(obj.key, obj.version_id, False)
    assert tags_of(s3_client, plain_bucket, obj.key) == {
        "retention-mode": "governance",
        "retain-until": "2024-03-08T00:00:00Z",
    }
    store.set_legal_hold(obj.key, obj.version_id, True)
    assert tags_of(s3_client, plain_bucket, obj.key)["legal-hold"] == "on"


def test_a_crash_before_the_lock_was_applied_is_repaired_on_retry(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    """The bytes are there (metadata says so) but the earlier attempt died before locking."""
    store = make_store(locked_bucket, retention_mode="compliance")
    data = sample_wav(5000)
    spooled = make_spooled(data)
    rec = str(uuid.uuid4())
    key = store.key_for(rec, SAMPLE_DAY, "wav")
    s3_client.put_object(
        Bucket=locked_bucket,
        Key=key,
        Body=data,
        ChecksumAlgorithm="SHA256",
        Metadata={"sha256": hashlib.sha256(data).hexdigest()},
    )

    obj = archive_spooled(store, spooled, rec, legal_hold=True)

    assert obj.already_archived and obj.retention_enforced and obj.legal_hold
    head = s3_client.head_object(Bucket=locked_bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == obj.retain_until
    assert head["ObjectLockLegalHoldStatus"] == "ON"


def test_legal_hold_asked_on_a_retry_is_added_on_a_plain_bucket(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket, retention_mode="governance")
    spooled = make_spooled(sample_wav(100))
    rec = str(uuid.uuid4())
    first = archive_spooled(store, spooled, rec)
    again = archive_spooled(store, spooled, rec, legal_hold=True)
    assert not first.legal_hold
    assert again.already_archived and again.legal_hold
    assert tags_of(s3_client, plain_bucket, first.key)["legal-hold"] == "on"
    assert again.retain_until == first.retain_until and again.retention_mode == "governance"
