"""Create the archive bucket: Object Lock (and with it versioning) on from the start.

Object Lock is enabled most simply when the bucket is created; `tenios-archive store
create-bucket` is that call, so an operator setting up the archive (or a local moto
server) need not know aws-cli's flags (issue 27: local set-up without guessing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tenios_io.exceptions import BucketNotUsable
from tenios_io.store.errors import error_code, http_status, translated

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["CreatedBucket", "create_archive_bucket"]


@dataclass(frozen=True)
class CreatedBucket:
    """What :func:`create_archive_bucket` found or made."""

    name: str
    region: str
    created: bool
    """False: the bucket was already there (ours, with Object Lock)."""


def create_archive_bucket(client: S3Client, name: str) -> CreatedBucket:
    """Create ``name`` with Object Lock enabled in the client's region; a bucket of
    ours that is already there is fine if it has Object Lock.

    Raises :class:`BucketNotUsable` for a bucket without Object Lock (it cannot be
    made to hold the archive's retention) or a name taken by someone else, and the
    store's translated errors otherwise.
    """
    region = client.meta.region_name or "us-east-1"
    args: dict[str, Any] = {"Bucket": name, "ObjectLockEnabledForBucket": True}
    if region != "us-east-1":  # S3's rule: us-east-1 takes no location constraint
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    # Asked first: in us-east-1 CreateBucket of a bucket one owns succeeds again (S3's
    # legacy rule), so its answer cannot say whether the bucket was made now.
    with translated(name, "HeadBucket", needs="s3:ListBucket on the bucket"):
        try:
            client.head_bucket(Bucket=name)
            exists = True
        except ClientError as exc:
            if http_status(exc) != 404:
                raise
            exists = False
    if not exists:
        with translated(
            name, "CreateBucket", needs="s3:CreateBucket, s3:PutBucketObjectLockConfiguration"
        ):
            try:
                client.create_bucket(**args)
                return CreatedBucket(name, region, created=True)
            except ClientError as exc:
                if error_code(exc) == "BucketAlreadyExists":
                    raise BucketNotUsable(
                        f"bucket name {name!r} is taken by another account: choose another "
                        "TENIOS_S3_BUCKET"
                    ) from None
                if error_code(exc) != "BucketAlreadyOwnedByYou":  # made meanwhile: check it
                    raise
    with translated(
        name, "GetObjectLockConfiguration", needs="s3:GetBucketObjectLockConfiguration"
    ):
        try:
            lock = client.get_object_lock_configuration(Bucket=name)
            enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        except ClientError as exc:
            if error_code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            enabled = None
    if enabled != "Enabled":
        raise BucketNotUsable(
            f"bucket {name!r} already exists without Object Lock: retention could not be "
            "enforced; create a new bucket (another TENIOS_S3_BUCKET)"
        )
    return CreatedBucket(name, region, created=False)
