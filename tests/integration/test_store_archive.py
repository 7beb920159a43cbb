"""Uploads against moto over HTTP: byte-exact, idempotent, never overwriting."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import tenios_io
from tenios_io.exceptions import ArchiveConflict
from tenios_io.recording.spool import HashingSpool, Spooled
from tenios_io.store import ArchiveStore, make_s3_client
from tests.fixtures.moto import SAMPLE_DAY, archive_spooled, object_versions, sample_wav

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024


def downloaded_sha(store: ArchiveStore, key: str, tmp_path: Path) -> tuple[str, int]:
    with HashingSpool(tmp_path) as spool:
        store.download(key, spool)
        spooled = spool.finish()
    return spooled.sha256, spooled.size


def test_small_upload_is_byte_exact(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    tmp_path: Path,
) -> None:
    store = make_store(plain_bucket, retention_mode="none")
    data = sample_wav(300_000)
    spooled = make_spooled(data)
    rec = str(uuid.uuid4()).upper()

    obj = archive_spooled(store, spooled, rec)

    assert obj.key == f"recordings/2024/03/07/{rec.lower()}.wav"
    assert (obj.bucket, obj.sha256, obj.size) == (
        plain_bucket,
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    assert (obj.content_type, obj.already_archived, obj.recording_uuid) == (
        "audio/wav",
        False,
        rec.lower(),
    )
    assert (obj.retention_mode, obj.retain_until, obj.retention_enforced) == ("none", None, False)
    assert downloaded_sha(store, obj.key, tmp_path) == (obj.sha256, obj.size)
    head = s3_client.head_object(Bucket=plain_bucket, Key=obj.key)
    assert head["ContentType"] == "audio/wav"
    assert head["Metadata"] == {
        "sha256": obj.sha256,
        "recording-uuid": rec.lower(),
        "call-uuid": "c0ffee00-0000-4000-8000-000000000001",
        "size": str(len(data)),
        "source": "api",
        "tool-version": tenios_io.__version__,
    }
    assert "TagCount" not in head


def test_multipart_upload_is_byte_exact(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    tmp_path: Path,
) -> None:
    store = make_store(locked_bucket, multipart_threshold=5 * MiB, part_size=5 * MiB)
    data = sample_wav(12 * MiB + 12_345, seed=1)
    obj = archive_spooled(store, make_spooled(data), str(uuid.uuid4()))

    head = s3_client.head_object(Bucket=locked_bucket, Key=obj.key, ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")  # really three parts
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert obj.version_id == head["VersionId"]
    assert downloaded_sha(store, obj.key, tmp_path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert s3_client.list_multipart_uploads(Bucket=locked_bucket).get("Uploads", []) == []


@pytest.mark.parametrize("size", [1000, 6 * MiB], ids=["single", "multipart"])
def test_archiving_twice_is_already_archived_and_writes_nothing(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    size: int,
) -> None:
    store = make_store(locked_bucket, multipart_threshold=5 * MiB, part_size=5 * MiB)
    rec = str(uuid.uuid4())
    spooled = make_spooled(sample_wav(size, seed=2))
    first = archive_spooled(store, spooled, rec)

    # a crashed worker's retry, with a fresh store (no state carried over)
    again = archive_spooled(make_store(locked_bucket, multipart_threshold=5 * MiB), spooled, rec)

    assert again.already_archived and not first.already_archived
    assert (again.key, again.version_id, again.sha256, again.size) == (
        first.key,
        first.version_id,
        first.sha256,
        first.size,
    )
    assert (again.retention_mode, again.retain_until, again.retention_enforced) == (
        first.retention_mode,
        first.retain_until,
        first.retention_enforced,
    )
    assert len(object_versions(s3_client, locked_bucket, first.key)) == 1
    assert s3_client.list_multipart_uploads(Bucket=locked_bucket).get("Uploads", []) == []


@pytest.mark.parametrize("size", [1000, 6 * MiB], ids=["single", "multipart"])
def test_other_bytes_under_the_same_key_are_a_conflict_and_never_overwrite(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    tmp_path: Path,
    size: int,
) -> None:
    store = make_store(locked_bucket, multipart_threshold=5 * MiB, part_size=5 * MiB)
    rec = str(uuid.uuid4())
    original = archive_spooled(store, make_spooled(sample_wav(size, seed=3)), rec)
    other = make_spooled(sample_wav(size, seed=4))

    with pytest.raises(ArchiveConflict) as caught:
        archive_spooled(store, other, rec)

    error = caught.value
    assert original.sha256 in str(error) and other.sha256 in str(error)
    assert (error.recording_uuid, error.s3_key) == (rec, original.key)
    assert (error.expected_sha256, error.found_sha256) == (other.sha256, original.sha256)
    assert len(object_versions(s3_client, locked_bucket, original.key)) == 1
    assert downloaded_sha(store, original.key, tmp_path) == (original.sha256, original.size)
    assert s3_client.list_multipart_uploads(Bucket=locked_bucket).get("Uploads", []) == []


def test_an_object_someone_else_put_there_is_a_conflict(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket, retention_mode="none")
    rec = str(uuid.uuid4())
    spooled = make_spooled(sample_wav(500))
    key = store.key_for(rec, SAMPLE_DAY, "wav")
    s3_client.put_object(Bucket=plain_bucket, Key=key, Body=b"not ours")  # no metadata at all

    with pytest.raises(ArchiveConflict, match=r"\(unknown\)") as caught:
        archive_spooled(store, spooled, rec)
    assert caught.value.found_sha256 is None
    assert s3_client.get_object(Bucket=plain_bucket, Key=key)["Body"].read() == b"not ours"


def test_metadata_is_ascii_safe_and_round_trips(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
) -> None:
    store = make_store(plain_bucket, retention_mode="none")
    source = "sftp:/drop/Müller Anruf 100%\n.wav"
    obj = archive_spooled(
        store, make_spooled(b"\x00" * 10), str(uuid.uuid4()), source=source, call_uuid=None
    )

    info = store.head(obj.key)
    assert info is not None
    assert info.metadata["source"] == source
    assert "call-uuid" not in info.metadata
    assert (info.content_type, obj.content_type, obj.key.endswith(".bin")) == (
        "application/octet-stream",
        "application/octet-stream",
        True,
    )


def test_server_side_encryption_is_requested_and_checked(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket, retention_mode="none", sse="AES256")
    obj = archive_spooled(store, make_spooled(sample_wav(2000)), str(uuid.uuid4()))
    assert (
        s3_client.head_object(Bucket=plain_bucket, Key=obj.key)["ServerSideEncryption"] == "AES256"
    )


def test_kms_encryption_is_requested_with_the_key(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket, retention_mode="none", sse="aws:kms", kms_key_id="alias/rec")
    obj = archive_spooled(store, make_spooled(sample_wav(2000)), str(uuid.uuid4()))
    head = s3_client.head_object(Bucket=plain_bucket, Key=obj.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/rec")


@pytest.mark.parametrize("built", ["with-session", "from-environment"])
def test_response_timestamps_are_utc_instants(
    built: str,
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    moto_server: str,
    moto_credentials: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """make_s3_client's timestamp parser on moto's answers, for a session passed in and
    for the one it makes itself: Last-Modified (an HTTP date), the retain-until header
    and a listing's LastModified (ISO 8601) come back as UTC datetimes, the retain-until
    the very instant the store asked for."""
    if built == "from-environment":
        for name, value in {**moto_credentials, "AWS_ENDPOINT_URL_S3": moto_server}.items():
            monkeypatch.setenv(name, value)
        s3_client = make_s3_client()
    store = make_store(locked_bucket, client=s3_client)
    before = datetime.now(UTC).replace(microsecond=0)
    obj = archive_spooled(store, make_spooled(sample_wav(50_000, seed=7)), str(uuid.uuid4()))
    after = datetime.now(UTC)

    head = s3_client.head_object(Bucket=locked_bucket, Key=obj.key, VersionId=obj.version_id)
    listed = s3_client.list_objects_v2(Bucket=locked_bucket, Prefix=obj.key)["Contents"][0]
    for moment in (head["LastModified"], head["ObjectLockRetainUntilDate"], listed["LastModified"]):
        assert moment.tzinfo is UTC
    assert obj.retain_until is not None
    assert head["ObjectLockRetainUntilDate"] == obj.retain_until
    assert before <= head["LastModified"] <= after
    assert listed["LastModified"].replace(microsecond=0) == head["LastModified"]
    info = store.head(obj.key, version_id=obj.version_id)
    assert info is not None
    assert (info.retain_until, info.last_modified) == (obj.retain_until, head["LastModified"])
