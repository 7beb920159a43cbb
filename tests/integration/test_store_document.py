"""ArchiveStore.put_document against moto: never overwritten, locked where the bucket can."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tenios_io.exceptions import ArchiveConflict
from tenios_io.store import ArchiveStore
from tests.fixtures.moto import object_versions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY = "recordings/_custody/checkpoints/00000000000000000042.json"
BODY = b'{"last_seq": 42}\n'


def in_days(days: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def lock_config_calls(client: S3Client) -> list[int]:
    """Count GetObjectLockConfiguration requests made through ``client``."""
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    client.meta.events.register("before-call.s3.GetObjectLockConfiguration", count)
    return calls


def test_new_document_is_written_locked_encrypted_and_verified(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    store = make_store(locked_bucket, retention_mode="governance", retention_days=30, sse="AES256")
    until = in_days(30)

    version = store.put_document(KEY, BODY, retain_until=until)

    assert version is not None
    response = s3_client.get_object(Bucket=locked_bucket, Key=KEY, VersionId=version)
    assert response["Body"].read() == BODY
    assert response["ContentType"] == "application/json"
    assert response["ServerSideEncryption"] == "AES256"
    assert response["Metadata"]["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert response["ObjectLockMode"] == "GOVERNANCE"
    assert response["ObjectLockRetainUntilDate"] == until
    assert [v["VersionId"] for v in object_versions(s3_client, locked_bucket, KEY)] == [version]


def test_identical_document_again_returns_the_same_version_and_writes_nothing(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    store = make_store(locked_bucket, retention_mode="governance", retention_days=30)
    first = store.put_document(KEY, BODY, retain_until=in_days(30))

    # Another store (a second run) with a later retain-until date: the bytes decide.
    again = make_store(locked_bucket, retention_mode="governance").put_document(
        KEY, BODY, retain_until=in_days(31)
    )

    assert again == first
    assert [v["VersionId"] for v in object_versions(s3_client, locked_bucket, KEY)] == [first]


@pytest.mark.parametrize(
    "other",
    [b'{"last_seq": 43}\n', b'{"last_seq": 42}\n\n', b"{}"],
    ids=["same-length", "new-longer", "new-shorter"],
)
def test_different_document_is_a_conflict_and_nothing_is_overwritten(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    s3_client: S3Client,
    other: bytes,
) -> None:
    store = make_store(locked_bucket, retention_mode="governance", retention_days=30)
    first = store.put_document(KEY, BODY, retain_until=in_days(30))

    with pytest.raises(ArchiveConflict) as conflict:
        store.put_document(KEY, other, retain_until=in_days(30))

    assert conflict.value.s3_key == KEY and KEY in str(conflict.value)
    assert conflict.value.expected_sha256 == hashlib.sha256(other).hexdigest()
    if len(BODY) <= len(other):
        assert conflict.value.found_sha256 == hashlib.sha256(BODY).hexdigest()
    else:  # only len(other) + 1 bytes of the existing document were read
        assert conflict.value.found_sha256 is None
    assert [v["VersionId"] for v in object_versions(s3_client, locked_bucket, KEY)] == [first]
    assert s3_client.get_object(Bucket=locked_bucket, Key=KEY)["Body"].read() == BODY


def test_plain_bucket_gets_no_lock_and_no_retention_tags(
    plain_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    store = make_store(plain_bucket, retention_mode="compliance", retention_days=30)

    version = store.put_document(KEY, BODY, content_type="text/plain", retain_until=in_days(30))

    assert version is None  # an unversioned bucket
    head = s3_client.head_object(Bucket=plain_bucket, Key=KEY)
    assert "ObjectLockMode" not in head and "ObjectLockRetainUntilDate" not in head
    assert head["ContentType"] == "text/plain"
    assert s3_client.get_object_tagging(Bucket=plain_bucket, Key=KEY)["TagSet"] == []
    assert not store.object_lock_enabled()
    assert store.put_document(KEY, BODY, content_type="text/plain") is None  # identical: accepted


@pytest.mark.parametrize(
    ("retention_mode", "retain_until"),
    [("none", in_days(30)), ("governance", None), ("governance", in_days(-1))],
    ids=["store-without-retention", "no-date", "date-passed"],
)
def test_locked_bucket_without_a_future_retention_gets_no_lock(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    s3_client: S3Client,
    retention_mode: str,
    retain_until: datetime | None,
) -> None:
    store = make_store(locked_bucket, retention_mode=retention_mode)

    version = store.put_document(KEY, BODY, retain_until=retain_until)

    head = s3_client.head_object(Bucket=locked_bucket, Key=KEY, VersionId=version)
    assert "ObjectLockMode" not in head


def test_naive_retain_until_is_refused_before_anything_is_sent(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    store = make_store(locked_bucket)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.put_document(KEY, BODY, retain_until=datetime(2099, 1, 1))
    assert object_versions(s3_client, locked_bucket, KEY) == []


def test_public_settings_and_cached_object_lock_check(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    calls = lock_config_calls(s3_client)
    store = make_store(locked_bucket, retention_mode="compliance", retention_days=12)

    assert (store.retention_mode, store.retention_days) == ("compliance", 12)
    assert store.object_lock_enabled() and store.object_lock_enabled()
    assert calls == [1]
