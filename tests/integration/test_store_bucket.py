"""ArchiveStore.check(): is the bucket usable, and what does it protect?"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tenios_io.exceptions import BucketNotUsable
from tenios_io.store import PROBE_NAME, ArchiveStore, parse_object_key
from tests.fixtures.moto import inject_errors, object_versions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_locked_bucket(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    status = make_store(locked_bucket, retention_mode="compliance").check()
    assert (status.bucket, status.versioning, status.object_lock) == (
        locked_bucket,
        "Enabled",
        True,
    )
    assert status.retention_enforced
    assert status.default_retention is None
    assert status.warnings == ()
    assert status.probe_key == f"recordings/{PROBE_NAME}"


def test_default_retention_rule_is_reported(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    s3_client.put_object_lock_configuration(
        Bucket=locked_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
        },
    )
    assert make_store(locked_bucket).check().default_retention == "GOVERNANCE 30 days"


def test_plain_bucket_is_usable_with_warnings(
    plain_bucket: str, make_store: Callable[..., ArchiveStore]
) -> None:
    status = make_store(plain_bucket, retention_mode="governance").check()
    assert (status.versioning, status.object_lock, status.retention_enforced) == (
        "Disabled",
        False,
        False,
    )
    assert len(status.warnings) == 2
    assert "enable versioning" in status.warnings[0]
    assert "not enforced" in status.warnings[1]
    unretained = make_store(plain_bucket, retention_mode="none").check()
    assert len(unretained.warnings) == 1 and "versioning" in unretained.warnings[0]


def test_the_probe_is_written_once_however_often_we_check(
    locked_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    store = make_store(locked_bucket, prefix="archive/tenios")
    for _ in range(3):
        assert store.check().probe_key == f"archive/tenios/{PROBE_NAME}"
    assert len(object_versions(s3_client, locked_bucket, f"archive/tenios/{PROBE_NAME}")) == 1
    assert parse_object_key("archive/tenios", f"archive/tenios/{PROBE_NAME}") is None


def test_missing_bucket(make_store: Callable[..., ArchiveStore]) -> None:
    name = f"tenios-missing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(BucketNotUsable, match=f"bucket '{name}' does not exist"):
        make_store(name).check()


def test_write_refused(
    plain_bucket: str, make_store: Callable[..., ArchiveStore], s3_client: S3Client
) -> None:
    inject_errors(s3_client, "PutObject", times=1, status=403, code="AccessDenied")
    with pytest.raises(BucketNotUsable, match="needs s3:PutObject") as caught:
        make_store(plain_bucket).check()
    assert caught.value.s3_key == f"recordings/{PROBE_NAME}"
