"""The custody sidecar, and the small read/list/delete helpers the audit builds on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import tenios_io
from tenios_io.checksum import HashingSpool, Spooled
from tenios_io.exceptions import ArchiveConflict, VerificationFailed
from tenios_io.store import ArchivedObject, ArchiveStore, sidecar_key
from tests.fixtures.moto import archive_spooled, object_versions, sample_wav

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FETCHED = datetime(2024, 3, 8, 1, 2, 3, tzinfo=UTC)
ARCHIVED = datetime(2024, 3, 8, 1, 2, 9, tzinfo=UTC)


def fields(event_hash: str = "ab" * 32) -> dict[str, Any]:
    return {"custody_event_hash": event_hash, "fetched_at": FETCHED, "archived_at": ARCHIVED}


@pytest.fixture
def archived(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
) -> tuple[ArchiveStore, ArchivedObject]:
    store = make_store(locked_bucket, retention_mode="compliance", retention_days=3650)
    obj = archive_spooled(
        store, make_spooled(sample_wav(2000)), str(uuid.uuid4()), source="sftp:/drop/a.wav"
    )
    return store, obj


def test_sidecar_is_canonical_json_with_the_custody_fields(
    archived: tuple[ArchiveStore, ArchivedObject], s3_client: S3Client
) -> None:
    store, obj = archived
    key = store.put_sidecar(obj, fields())

    assert key == obj.key + ".json" == sidecar_key(obj.key)
    response = s3_client.get_object(Bucket=obj.bucket, Key=key)
    body = response["Body"].read()
    assert response["ContentType"] == "application/json"
    document = json.loads(body)
    assert body == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document == {
        "recording_uuid": obj.recording_uuid,
        "call_uuid": obj.call_uuid,
        "sha256": obj.sha256,
        "size": obj.size,
        "content_type": "audio/wav",
        "source": "sftp:/drop/a.wav",
        "bucket": obj.bucket,
        "key": obj.key,
        "version_id": obj.version_id,
        "fetched_at": "2024-03-08T01:02:03Z",
        "archived_at": "2024-03-08T01:02:09Z",
        "retention_mode": "compliance",
        "retain_until": obj.retain_until.isoformat().replace("+00:00", "Z")
        if obj.retain_until
        else None,
        "retention_enforced": True,
        "legal_hold": False,
        "tool_version": tenios_io.__version__,
        "custody_event_hash": "ab" * 32,
    }
    assert store.read_sidecar(obj.key) == document


def test_sidecar_has_the_same_retention_as_the_object(
    archived: tuple[ArchiveStore, ArchivedObject], s3_client: S3Client
) -> None:
    store, obj = archived
    key = store.put_sidecar(obj, fields())
    head = s3_client.head_object(Bucket=obj.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == obj.retain_until


def test_sidecar_on_a_plain_bucket_carries_retention_tags(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket, retention_mode="governance", retention_days=1)
    obj = archive_spooled(store, make_spooled(sample_wav(100)), str(uuid.uuid4()), legal_hold=True)
    key = store.put_sidecar(obj, fields())
    tags = s3_client.get_object_tagging(Bucket=plain_bucket, Key=key)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "retention-mode": "governance",
        "retain-until": "2024-03-08T00:00:00Z",
        "legal-hold": "on",
    }


def test_fields_may_repeat_what_the_object_says(
    archived: tuple[ArchiveStore, ArchivedObject],
) -> None:
    store, obj = archived
    assert obj.recording_uuid is not None
    repeated = {
        **fields(),
        "recording_uuid": obj.recording_uuid.upper(),
        "source": obj.source,
        "tool_version": tenios_io.__version__,
        "fetched_at": "2024-03-08T01:02:03Z",  # strings are passed through as given
        "ledger_event_id": 42,
    }
    store.put_sidecar(obj, repeated)
    sidecar = store.read_sidecar(obj.key)
    assert sidecar is not None
    assert (sidecar["recording_uuid"], sidecar["ledger_event_id"]) == (obj.recording_uuid, 42)


def test_sidecar_written_by_a_crashed_attempt_is_accepted(
    archived: tuple[ArchiveStore, ArchivedObject], s3_client: S3Client
) -> None:
    store, obj = archived
    store.put_sidecar(obj, fields("11" * 32))
    # the retry has a new custody event (and hash), but the same bytes
    assert store.put_sidecar(obj, fields("22" * 32)) == sidecar_key(obj.key)
    sidecar = store.read_sidecar(obj.key)
    assert sidecar is not None and sidecar["custody_event_hash"] == "11" * 32
    assert len(object_versions(s3_client, obj.bucket, sidecar_key(obj.key))) == 1


def test_sidecar_describing_other_bytes_is_a_conflict(
    archived: tuple[ArchiveStore, ArchivedObject],
) -> None:
    store, obj = archived
    store.put_sidecar(obj, fields())
    other = dataclasses.replace(obj, sha256="0" * 64)
    with pytest.raises(ArchiveConflict) as caught:
        store.put_sidecar(other, fields())
    assert obj.sha256 in str(caught.value) and "0" * 64 in str(caught.value)
    assert caught.value.s3_key == sidecar_key(obj.key)
    assert caught.value.found_sha256 == obj.sha256


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"fetched_at": FETCHED}, "custody_event_hash"),
        ({"custody_event_hash": "x"}, "fetched_at"),
        ({**fields(), "sha256": "f" * 64}, "contradicts"),
        ({**fields(), "fetched_at": datetime(2024, 1, 1)}, "naive"),
    ],
)
def test_sidecar_fields_are_checked(
    archived: tuple[ArchiveStore, ArchivedObject], bad: dict[str, Any], words: str
) -> None:
    store, obj = archived
    with pytest.raises(ValueError, match=words):
        store.put_sidecar(obj, bad)


def test_read_sidecar(
    plain_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    store = make_store(plain_bucket)
    assert store.read_sidecar("recordings/none.wav") is None
    s3_client.put_object(Bucket=plain_bucket, Key="recordings/bad.wav.json", Body=b"{nope")
    with pytest.raises(VerificationFailed, match="not valid JSON"):
        store.read_sidecar("recordings/bad.wav")
    s3_client.put_object(Bucket=plain_bucket, Key="recordings/list.wav.json", Body=b"[1]")
    with pytest.raises(VerificationFailed, match="not a JSON object"):
        store.read_sidecar("recordings/list.wav")


def test_head_iter_download_delete(
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    tmp_path: Path,
) -> None:
    bucket = f"tenios-versioned-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = make_store(bucket, retention_mode="governance", retention_days=5)
    objs = [
        archive_spooled(store, make_spooled(sample_wav(1000 + i, seed=i)), str(uuid.uuid4()))
        for i in range(5)
    ]
    s3_client.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x")

    listed = list(store.iter_objects(page_size=2))
    assert sorted(o.key for o in listed) == sorted(o.key for o in objs)
    assert {o.size for o in listed} == {1000, 1001, 1002, 1003, 1004}
    assert len(list(store.iter_objects("elsewhere/"))) == 1

    obj = objs[0]
    info = store.head(obj.key, with_tags=True)
    assert info is not None
    assert (info.size, info.sha256, info.version_id) == (obj.size, obj.sha256, obj.version_id)
    assert info.checksum_sha256 is not None
    assert (info.lock_mode, info.legal_hold) == (None, False)
    assert info.tags == {"retention-mode": "governance", "retain-until": "2024-03-12T00:00:00Z"}
    assert info.metadata["recording-uuid"] == obj.recording_uuid
    assert store.head("recordings/missing.wav") is None

    with HashingSpool(tmp_path) as spool:
        assert store.download(obj.key, spool, version_id=obj.version_id) == obj.size
        assert spool.finish().sha256 == obj.sha256 == hashlib.sha256(sample_wav(1000)).hexdigest()

    assert store.hash_object(obj.key) == (obj.sha256, obj.size)
    s3_client.put_object(Bucket=bucket, Key=obj.key, Body=b"replaced")  # a new latest version
    assert store.hash_object(obj.key) == (hashlib.sha256(b"replaced").hexdigest(), 8)
    assert store.hash_object(obj.key, version_id=obj.version_id) == (obj.sha256, obj.size)

    assert obj.version_id is not None
    store.delete_version(obj.key, obj.version_id)
    assert len(object_versions(s3_client, bucket, obj.key)) == 1  # only "replaced" is left
    info = store.head(obj.key)
    assert info is not None and info.size == 8
