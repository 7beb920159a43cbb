"""Faults on the wire: throttling is retried, failures are translated, multipart never orphans."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from tenios_io.exceptions import BucketNotUsable, StoreUnavailable, is_transient
from tenios_io.recording.spool import Spooled
from tenios_io.store import ArchiveStore
from tests.fixtures.moto import (
    SAMPLE_DAY,
    archive_spooled,
    inject_errors,
    object_versions,
    sample_wav,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024


def uploads(client: S3Client, bucket: str) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def part(number: int) -> Callable[[Any], bool]:
    return lambda request: f"partNumber={number}&" in request.url + "&"


def test_throttled_put_is_retried_and_succeeds(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    injected = inject_errors(s3_client, "PutObject", times=2, status=503, code="SlowDown")
    store = make_store(plain_bucket, retention_mode="none")
    obj = archive_spooled(store, make_spooled(sample_wav(10_000)), str(uuid.uuid4()))

    assert injected == [2]
    assert not obj.already_archived  # the retries were refused before reaching S3
    assert len(object_versions(s3_client, plain_bucket, obj.key)) == 1


def test_throttling_beyond_the_retry_budget_is_transient(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client_factory: Callable[..., S3Client],
) -> None:
    client = s3_client_factory(max_attempts=2)
    injected = inject_errors(client, "PutObject", times=100)
    store = make_store(plain_bucket, client=client, retention_mode="none")
    rec = str(uuid.uuid4())

    with pytest.raises(StoreUnavailable, match="SlowDown") as caught:
        archive_spooled(store, make_spooled(sample_wav(100)), rec)

    assert injected == [2]
    assert is_transient(caught.value)
    assert (caught.value.recording_uuid, caught.value.s3_key) == (
        rec,
        store.key_for(rec, SAMPLE_DAY, "wav"),
    )


def test_throttled_part_is_retried(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    injected = inject_errors(s3_client, "UploadPart", times=2, when=part(2))
    store = make_store(
        plain_bucket, retention_mode="none", multipart_threshold=5 * MiB, part_size=5 * MiB
    )
    obj = archive_spooled(store, make_spooled(sample_wav(11 * MiB)), str(uuid.uuid4()))
    assert injected == [2]
    assert obj.size == 11 * MiB
    assert uploads(s3_client, plain_bucket) == []


def test_multipart_refused_midway_is_aborted(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    injected = inject_errors(
        s3_client, "UploadPart", times=1, status=403, code="AccessDenied", when=part(2)
    )
    store = make_store(
        plain_bucket, retention_mode="none", multipart_threshold=5 * MiB, part_size=5 * MiB
    )
    rec = str(uuid.uuid4())

    with pytest.raises(BucketNotUsable, match="access denied"):
        archive_spooled(store, make_spooled(sample_wav(16 * MiB)), rec)

    assert injected == [1]
    assert uploads(s3_client, plain_bucket) == []
    assert store.head(store.key_for(rec, SAMPLE_DAY, "wav")) is None


def test_multipart_complete_failing_for_good_is_aborted_and_transient(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client_factory: Callable[..., S3Client],
) -> None:
    client = s3_client_factory(max_attempts=2)
    inject_errors(client, "CompleteMultipartUpload", times=2, status=500, code="InternalError")
    store = make_store(
        plain_bucket,
        client=client,
        retention_mode="none",
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
    )
    with pytest.raises(StoreUnavailable, match="InternalError"):
        archive_spooled(store, make_spooled(sample_wav(6 * MiB)), str(uuid.uuid4()))
    assert uploads(client, plain_bucket) == []


def test_multipart_interrupted_is_aborted(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    """Not only S3 errors: anything, even Ctrl-C between parts, aborts the upload."""

    def interrupt(request: Any, **_: Any) -> None:
        if part(3)(request):
            raise KeyboardInterrupt

    s3_client.meta.events.register("before-send.s3.UploadPart", interrupt)
    store = make_store(
        plain_bucket, retention_mode="none", multipart_threshold=5 * MiB, part_size=5 * MiB
    )
    with pytest.raises(KeyboardInterrupt):
        archive_spooled(store, make_spooled(sample_wav(16 * MiB)), str(uuid.uuid4()))
    assert uploads(s3_client, plain_bucket) == []


def test_unreachable_endpoint_is_transient(
    plain_bucket: str,
    make_spooled: Callable[[bytes], Spooled],
) -> None:
    import socket

    import boto3

    from tenios_io.store import make_s3_client

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_s3_client(
        1,
        session=boto3.session.Session(
            aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
        ),
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    store = ArchiveStore(client, plain_bucket, retention_mode="none")
    with pytest.raises(StoreUnavailable, match="could not be reached"):
        archive_spooled(store, make_spooled(b"x"), str(uuid.uuid4()))
