"""The custody metadata in the one PUT, reading an earlier version's sidecar, and the small
read/list/delete helpers the audit builds on."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import tenios_io
from tenios_io.exceptions import StoreAccessDenied, VerificationFailed
from tenios_io.recording.spool import HashingSpool, Spooled
from tenios_io.store import ArchivedObject, ArchiveStore, sidecar_key
from tenios_io.store.metadata import MAX_METADATA_BYTES, custody_metadata, matches, metadata_bytes
from tests.fixtures.moto import archive_spooled, inject_errors, object_versions, sample_wav

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def archived(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
) -> tuple[ArchiveStore, ArchivedObject]:
    store = make_store(locked_bucket, retention_mode="compliance", retention_days=3650)
    obj = archive_spooled(
        store,
        make_spooled(sample_wav(2000)),
        str(uuid.uuid4()),
        source="sftp:/drop/a.wav",
        audio_metadata={
            "codec": "pcm",
            "channels": "1",
            "sample-rate": "8000",
            "duration-seconds": "0.123",
        },
        fetched_at="2024-03-08T01:02:03.000000Z",
    )
    return store, obj


def test_one_put_carries_the_custody_facts_as_metadata(
    archived: tuple[ArchiveStore, ArchivedObject], s3_client: S3Client
) -> None:
    """`aws s3api head-object` alone says what the object is; no sidecar is written."""
    _store, obj = archived
    head = s3_client.head_object(Bucket=obj.bucket, Key=obj.key)
    assert head["Metadata"] == {
        "recording-uuid": obj.recording_uuid,
        "call-uuid": obj.call_uuid,
        "sha256": obj.sha256,
        "size": str(obj.size),
        "source": "sftp:/drop/a.wav",
        "fetched-at": "2024-03-08T01:02:03.000000Z",
        "tool-version": tenios_io.__version__,
        "codec": "pcm",
        "channels": "1",
        "sample-rate": "8000",
        "duration-seconds": "0.123",
    }
    assert head["ObjectLockMode"] == "COMPLIANCE"  # locked with the object
    assert object_versions(s3_client, obj.bucket, sidecar_key(obj.key)) == []


def test_metadata_is_ascii_and_within_the_2_kb_limit(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(plain_bucket)
    long_source = "sftp:/drop/" + "ä" * 1500 + ".wav"
    obj = archive_spooled(
        store, make_spooled(sample_wav(100)), str(uuid.uuid4()), source="sftp:/drop/Müller 1.wav"
    )
    raw = s3_client.head_object(Bucket=plain_bucket, Key=obj.key)["Metadata"]
    assert raw["source"] == "sftp:/drop/M%C3%BCller%201.wav"  # percent-encoded ASCII
    info = store.head(obj.key)
    assert info is not None and info.metadata["source"] == "sftp:/drop/Müller 1.wav"

    long = archive_spooled(
        store, make_spooled(sample_wav(101)), str(uuid.uuid4()), source=long_source
    )
    raw = s3_client.head_object(Bucket=plain_bucket, Key=long.key)["Metadata"]
    assert metadata_bytes(raw) <= MAX_METADATA_BYTES
    # Too long to carry whole: its SHA-256, which an auditor checks against the ledger.
    assert raw["source"] == "sha256:" + hashlib.sha256(long_source.encode()).hexdigest()
    assert matches(raw["source"], long_source) and not matches(raw["source"], "api")
    assert raw["size"] == "101" and raw["sha256"] == long.sha256


def test_custody_metadata_builder() -> None:
    encoded = custody_metadata(
        recording_uuid="r",
        call_uuid=None,
        sha256="ab" * 32,
        size=7,
        source="api",
        fetched_at=None,
        tool_version="1",
        audio={"sample_rate": "8000"},
    )
    assert encoded == {
        "recording-uuid": "r",
        "sha256": "ab" * 32,
        "size": "7",
        "source": "api",
        "tool-version": "1",
        "sample-rate": "8000",
    }
    with pytest.raises(ValueError, match="S3 allows 2048"):
        custody_metadata(
            recording_uuid="r",
            call_uuid=None,
            sha256="ab" * 32,
            size=7,
            source="api",
            fetched_at=None,
            tool_version="1",
            audio={"note": "x" * 3000},
        )


def test_read_sidecar_of_an_earlier_version(
    archived: tuple[ArchiveStore, ArchivedObject], s3_client: S3Client
) -> None:
    store, obj = archived
    assert store.read_sidecar(obj.key) is None
    document = {"recording_uuid": obj.recording_uuid, "sha256": obj.sha256, "size": obj.size}
    s3_client.put_object(
        Bucket=obj.bucket, Key=sidecar_key(obj.key), Body=json.dumps(document).encode()
    )
    assert store.read_sidecar(obj.key) == document


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


def test_iter_versions_lists_every_version_and_delete_marker_key_by_key(
    make_store: Callable[..., ArchiveStore], s3_client: S3Client, plain_bucket: str
) -> None:
    bucket = f"tenios-versioned-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = make_store(bucket)
    put = [s3_client.put_object(Bucket=bucket, Key="recordings/a", Body=b"1")["VersionId"]]
    put.append(s3_client.put_object(Bucket=bucket, Key="recordings/a", Body=b"22")["VersionId"])
    marker = s3_client.delete_object(Bucket=bucket, Key="recordings/a")["VersionId"]
    put.append(s3_client.put_object(Bucket=bucket, Key="recordings/a", Body=b"333")["VersionId"])
    b = s3_client.put_object(Bucket=bucket, Key="recordings/b", Body=b"b")["VersionId"]
    hidden = s3_client.put_object(Bucket=bucket, Key="recordings/c/x", Body=b"c")["VersionId"]
    gone = s3_client.delete_object(Bucket=bucket, Key="recordings/c/x")["VersionId"]
    s3_client.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x")

    for page_size in (1, 2, 1000):  # a key's entries split over pages, and in one page
        listed = list(store.iter_versions(page_size=page_size))
        keys = [v.key for v in listed]
        assert keys == sorted(keys), page_size  # one key's entries are consecutive
        assert [(v.key, v.version_id, v.size) for v in listed if not v.delete_marker] == [
            ("recordings/a", put[2], 3),  # newest first
            ("recordings/a", put[1], 2),
            ("recordings/a", put[0], 1),
            ("recordings/b", b, 1),
            ("recordings/c/x", hidden, 1),
        ], page_size
        assert [(v.key, v.version_id, v.size) for v in listed if v.delete_marker] == [
            ("recordings/a", marker, 0),
            ("recordings/c/x", gone, 0),
        ], page_size
        # what a GET answers comes first
        latest = [(v.key, v.version_id) for v in listed if v.is_latest]
        assert latest == [("recordings/a", put[2]), ("recordings/b", b), ("recordings/c/x", gone)]
        assert [keys.index(key) for key, _ in latest] == [
            n for n, v in enumerate(listed) if v.is_latest
        ]
    # an unversioned bucket: one "null" version per key
    plain = make_store(plain_bucket)
    s3_client.put_object(Bucket=plain_bucket, Key="recordings/a", Body=b"1")
    s3_client.put_object(Bucket=plain_bucket, Key="recordings/a", Body=b"22")
    (only,) = plain.iter_versions()
    assert (only.key, only.version_id, only.is_latest, only.size) == ("recordings/a", None, True, 2)


def test_iter_versions_translates_refusals(
    make_store: Callable[..., ArchiveStore], s3_client: S3Client, plain_bucket: str
) -> None:
    inject_errors(s3_client, "ListObjectVersions", times=1, status=403, code="AccessDenied")
    with pytest.raises(StoreAccessDenied, match="s3:ListBucketVersions"):
        list(make_store(plain_bucket).iter_versions())
