"""One bucket through one injected client: the settings and raw reads the store's parts share."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tenios_io.store.errors import http_status, translated
from tenios_io.store.responses import version_arg
from tenios_io.store.results import SseMode

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

__all__ = ["Bucket"]


class Bucket:
    """The client, the bucket's name, the encryption to ask for, and the logger.

    Errors are botocore's (untranslated) except inside :meth:`translated`.
    """

    def __init__(
        self,
        client: S3Client,
        name: str,
        *,
        sse: SseMode | None,
        kms_key_id: str | None,
        log: logging.Logger,
    ) -> None:
        self.client = client
        self.name = name
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.log = log

    def sse_args(self) -> dict[str, Any]:
        """The encryption arguments of every write."""
        args: dict[str, Any] = {}
        if self.sse is not None:
            args["ServerSideEncryption"] = self.sse
        if self.kms_key_id is not None:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def translated(
        self,
        action: str,
        key: str | None = None,
        *,
        recording_uuid: str | None = None,
        needs: str | None = None,
    ) -> AbstractContextManager[None]:
        """:func:`~tenios_io.store.errors.translated` for this bucket."""
        return translated(self.name, action, key, recording_uuid=recording_uuid, needs=needs)

    def head(
        self, key: str, version_id: str | None = None, *, checksum: bool = True
    ) -> HeadObjectOutputTypeDef | None:
        """HEAD an object (version), with its checksum by default; None if it does not exist."""
        args: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        if checksum:
            args["ChecksumMode"] = "ENABLED"
        try:
            return self.client.head_object(**args)
        except ClientError as exc:
            if http_status(exc) == 404:
                return None
            raise

    def tags(self, key: str, version_id: str | None) -> dict[str, str]:
        """An object version's tags."""
        version = version_arg(version_id)
        tag_set = self.client.get_object_tagging(Bucket=self.name, Key=key, **version)
        return {tag["Key"]: tag["Value"] for tag in tag_set.get("TagSet", [])}
