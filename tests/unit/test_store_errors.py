"""botocore errors → StoreError, in one place; and the store's argument checks (no network).

A real boto3 client is used with botocore's Stubber, so requests never leave the
process; the wire behaviour is covered against moto in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from tenios_io.exceptions import (
    BucketNotUsable,
    StoreAccessDenied,
    StoreUnavailable,
    Terminal,
    Transient,
    VerificationFailed,
    is_transient,
)
from tenios_io.recording.spool import Spooled
from tenios_io.store import ArchiveStore, _translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"


@pytest.fixture
def client() -> S3Client:
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET, region_name="us-east-1"
    ).client("s3", endpoint_url="http://stubbed.invalid")


@pytest.fixture
def stub(client: S3Client) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber


def client_error(code: str, status: int, message: str = "msg") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )


def translate(exc: Any) -> Any:
    return _translate(
        exc,
        bucket="archive",
        action="PutObject",
        key="recordings/k.wav",
        recording_uuid="u",
        needs="s3:PutObject",
    )


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (client_error("SlowDown", 503), StoreUnavailable, "throttling"),
        (client_error("ServiceUnavailable", 503), StoreUnavailable, "try again"),
        (client_error("InternalError", 500), StoreUnavailable, "try again"),
        (client_error("Throttling", 400), StoreUnavailable, "throttling"),
        (client_error("RequestTimeout", 400), StoreUnavailable, "try again"),
        (client_error("TooManyRequests", 429), StoreUnavailable, "try again"),
        (client_error("WhoKnows", 502), StoreUnavailable, "try again"),
        (client_error("AccessDenied", 403), StoreAccessDenied, "needs s3:PutObject"),
        (client_error("InvalidAccessKeyId", 403), StoreAccessDenied, "standard chain"),
        (client_error("SignatureDoesNotMatch", 403), StoreAccessDenied, "access denied"),
        (client_error("NoSuchBucket", 404), StoreAccessDenied, "does not exist"),
        (client_error("KMS.NotFoundException", 400), StoreAccessDenied, "TENIOS_S3_KMS_KEY_ID"),
        (client_error("InvalidArgument", 400), BucketNotUsable, "refused"),
        (EndpointConnectionError(endpoint_url="http://s3.invalid"), StoreUnavailable, "reached"),
        (ConnectTimeoutError(endpoint_url="http://s3.invalid"), StoreUnavailable, "reached"),
        (ReadTimeoutError(endpoint_url="http://s3.invalid"), StoreUnavailable, "connection"),
        (NoCredentialsError(), StoreAccessDenied, "credentials"),
        (client_error("ExpiredToken", 400), StoreAccessDenied, "access denied"),
        (client_error("ConditionalRequestConflict", 409), StoreUnavailable, "try again"),
        (client_error("NoSuchUpload", 404), StoreUnavailable, "aborted upload"),
        (FlexibleChecksumError(error_msg="bad"), VerificationFailed, "checksum"),
    ],
)
def test_translation(exc: Any, kind: type[Exception], words: str) -> None:
    translated = translate(exc)
    assert type(translated) is kind
    assert words in str(translated)
    assert "archive" in str(translated)  # names the bucket
    assert translated.s3_key == "recordings/k.wav"
    assert translated.recording_uuid == "u"
    assert is_transient(translated) == (kind is StoreUnavailable)
    assert isinstance(translated, Transient | Terminal)


def test_programming_errors_are_not_translated() -> None:
    assert translate(ParamValidationError(report="Missing Bucket")) is None


def test_check_names_bucket_and_permission_on_403(client: S3Client, stub: Stubber) -> None:
    stub.add_client_error("head_bucket", "403", "Forbidden", http_status_code=403)
    with pytest.raises(BucketNotUsable) as caught:
        ArchiveStore(client, "archive").check()
    message = str(caught.value)
    assert "'archive'" in message
    assert "s3:ListBucket" in message
    assert SECRET not in message and "AKIDEXAMPLE" not in message
    assert isinstance(caught.value.__cause__, ClientError)


def test_check_says_what_to_fix_on_404(client: S3Client, stub: Stubber) -> None:
    stub.add_client_error("head_bucket", "404", "Not Found", http_status_code=404)
    with pytest.raises(BucketNotUsable, match=r"does not exist.*TENIOS_S3_BUCKET"):
        ArchiveStore(client, "archive").check()


def test_check_reports_missing_lock_permission(client: S3Client, stub: Stubber) -> None:
    stub.add_response("head_bucket", {})
    stub.add_response("get_bucket_versioning", {"Status": "Enabled"})
    stub.add_client_error(
        "get_object_lock_configuration", "AccessDenied", "Access Denied", http_status_code=403
    )
    with pytest.raises(BucketNotUsable, match="s3:GetBucketObjectLockConfiguration"):
        ArchiveStore(client, "archive").check()


def test_connection_errors_are_transient(client: S3Client) -> None:
    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://stubbed.invalid")

    client.meta.events.register("before-send.s3.HeadObject", refuse)
    with pytest.raises(StoreUnavailable, match="could not be reached"):
        ArchiveStore(client, "archive").head("recordings/k.wav")


def test_download_of_a_missing_object(client: S3Client, stub: Stubber) -> None:
    stub.add_client_error("get_object", "NoSuchKey", "gone", http_status_code=404)
    with pytest.raises(VerificationFailed, match="does not exist") as caught:
        ArchiveStore(client, "archive").download("recordings/k.wav", MemorySink())
    assert caught.value.s3_key == "recordings/k.wav"


def test_delete_version_refusal_names_key_and_retention(client: S3Client, stub: Stubber) -> None:
    stub.add_client_error("delete_object", "AccessDenied", "Access Denied", http_status_code=403)
    with pytest.raises(BucketNotUsable, match=r"s3:DeleteObjectVersion.*retention") as caught:
        ArchiveStore(client, "archive").delete_version("recordings/k.wav", "v1")
    assert caught.value.s3_key == "recordings/k.wav"


def test_delete_version_needs_a_version(client: S3Client) -> None:
    with pytest.raises(ValueError, match="version id"):
        ArchiveStore(client, "archive").delete_version("recordings/k.wav", "")


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"retention_mode": "forever"}, "retention_mode"),
        ({"retention_days": -1}, "retention_days"),
        ({"part_size": 1024}, "part_size"),
        ({"multipart_threshold": 0}, "multipart_threshold"),
        ({"multipart_threshold": 6 * 1024**3}, "multipart_threshold"),
        ({"sse": "rot13"}, "sse"),
        ({"kms_key_id": "key"}, "kms_key_id"),
        ({"prefix": "../up"}, "prefix"),
    ],
)
def test_constructor_rejects_bad_settings(client: S3Client, kw: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ArchiveStore(client, "archive", **kw)


def test_archive_rejects_a_bad_uuid_before_any_request(client: S3Client, stub: Stubber) -> None:
    store = ArchiveStore(client, "archive", retention_mode="none")
    spooled = Spooled(
        path=Path("/nonexistent"),
        sha256="0" * 64,
        size=1,
        content_type="audio/wav",
        extension="wav",
    )
    with pytest.raises(ValueError, match="canonical UUID"):
        store.archive(
            spooled, recording_uuid="../x", call_uuid=None, source="api", key_date=date(2024, 1, 1)
        )
    stub.assert_no_pending_responses()


class MemorySink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes, /) -> int:
        self.data += data
        return len(data)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return 0

    def truncate(self, size: int | None = None, /) -> int:
        return 0
