"""The read-back is the guarantee (moto verifies no checksum): prove it catches differences."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tenios_io.exceptions import VerificationFailed
from tenios_io.recording.spool import Spooled
from tenios_io.store import ArchiveStore
from tests.fixtures.moto import SAMPLE_DAY, archive_spooled, sample_wav, tamper

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024


def flip_base64(value: str) -> str:
    return ("B" if value[0] == "A" else "A") + value[1:]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda r: r.update(ContentLength=r["ContentLength"] - 1), "size"),
        (lambda r: r.update(ChecksumSHA256=flip_base64(r["ChecksumSHA256"])), "ChecksumSHA256"),
        (lambda r: r.pop("ChecksumSHA256"), "ChecksumSHA256 (none)"),
        (lambda r: r["Metadata"].update(sha256="0" * 64), "metadata sha256"),
        (lambda r: r.update(ObjectLockMode="GOVERNANCE"), "Object Lock mode GOVERNANCE"),
        (lambda r: r.pop("ObjectLockMode"), "Object Lock mode (none)"),
        (
            lambda r: r.update(
                ObjectLockRetainUntilDate=r["ObjectLockRetainUntilDate"] - timedelta(days=1)
            ),
            "retain-until",
        ),
        (lambda r: r.update(ObjectLockLegalHoldStatus="OFF"), "legal hold OFF"),
    ],
    ids=[
        "size",
        "checksum",
        "no-checksum",
        "metadata",
        "lock-mode",
        "no-lock",
        "retain-until",
        "legal-hold",
    ],
)
def test_single_put_read_back_mismatch_is_detected(
    locked_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    edit: Callable[[dict[str, Any]], None],
    words: str,
) -> None:
    store = make_store(locked_bucket, retention_mode="compliance", retention_days=30 * 365)
    rec = str(uuid.uuid4())
    tamper(s3_client, "HeadObject", edit)

    with pytest.raises(VerificationFailed, match=r"read-back .* does not match") as caught:
        archive_spooled(store, make_spooled(sample_wav(4096)), rec, legal_hold=True)

    assert words in str(caught.value)
    assert caught.value.recording_uuid == rec
    assert caught.value.s3_key == store.key_for(rec, SAMPLE_DAY, "wav")


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda r: r["Metadata"].update(sha256="f" * 64), "metadata sha256"),
        (lambda r: r.update(ChecksumSHA256=flip_base64(r["ChecksumSHA256"])), "composite"),
        (lambda r: r.update(ChecksumSHA256=r["ChecksumSHA256"].split("-")[0] + "-7"), "composite"),
        (lambda r: r.update(ContentLength=1), "size 1"),
    ],
    ids=["metadata", "composite", "part-count", "size"],
)
def test_multipart_read_back_mismatch_is_detected(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    edit: Callable[[dict[str, Any]], None],
    words: str,
) -> None:
    store = make_store(
        plain_bucket, retention_mode="none", multipart_threshold=5 * MiB, part_size=5 * MiB
    )
    tamper(s3_client, "HeadObject", edit)
    with pytest.raises(VerificationFailed, match=words):
        archive_spooled(store, make_spooled(sample_wav(11 * MiB)), str(uuid.uuid4()))


def test_object_overwritten_behind_our_back_is_detected(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
    s3_client_factory: Callable[..., S3Client],
) -> None:
    """Between our PUT and our HEAD another writer replaces the object (no versioning)."""
    intruder = s3_client_factory()
    store = make_store(plain_bucket, retention_mode="none")
    spooled = make_spooled(sample_wav(2048, seed=5))
    rec = str(uuid.uuid4())
    key = store.key_for(rec, SAMPLE_DAY, "wav")

    def overwrite(**_: Any) -> None:
        intruder.put_object(
            Bucket=plain_bucket,
            Key=key,
            Body=sample_wav(2048, seed=6),
            ChecksumAlgorithm="SHA256",
            Metadata={"sha256": spooled.sha256},  # even lying metadata does not get past
        )

    s3_client.meta.events.register("after-call.s3.PutObject", overwrite)
    with pytest.raises(VerificationFailed, match="ChecksumSHA256"):
        archive_spooled(store, spooled, rec)


def test_spool_changed_on_disk_after_hashing_aborts_the_multipart_upload(
    plain_bucket: str,
    make_store: Callable[..., ArchiveStore],
    make_spooled: Callable[[bytes], Spooled],
    s3_client: S3Client,
) -> None:
    store = make_store(
        plain_bucket, retention_mode="none", multipart_threshold=5 * MiB, part_size=5 * MiB
    )
    spooled = make_spooled(sample_wav(6 * MiB))
    with spooled.path.open("r+b") as file:  # bit rot, or a bug writing to the wrong file
        file.seek(5 * MiB + 3)
        file.write(b"\x00\x01\x02")
    rec = str(uuid.uuid4())

    with pytest.raises(VerificationFailed, match="changed after it was hashed"):
        archive_spooled(store, spooled, rec)

    assert s3_client.list_multipart_uploads(Bucket=plain_bucket).get("Uploads", []) == []
    assert store.head(store.key_for(rec, SAMPLE_DAY, "wav")) is None
