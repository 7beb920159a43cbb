"""botocore's errors → ours, in exactly one place (the exception classes live in
:mod:`tenios_io.exceptions`).

Throttling, 5xx and network errors, and the per-request races
``ConditionalRequestConflict`` (409) and ``NoSuchUpload`` (an aborted multipart),
become ``StoreUnavailable`` (transient; botocore's standard retry mode has already
retried them); missing buckets, refused permissions and unusable credentials become
``StoreAccessDenied`` (the whole run cannot work: it stops, tenios_io/run/stop.py),
other refusals ``BucketNotUsable`` (this request), each naming the bucket and what
to fix; a checksum mismatch on download is
``VerificationFailed``.  No message carries a credential.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from tenios_io.exceptions import (
    BucketNotUsable,
    StoreAccessDenied,
    StoreError,
    StoreUnavailable,
    VerificationFailed,
)

__all__ = ["error_code", "http_status", "is_precondition_failed", "translated"]

_THROTTLING_CODES: Final = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_PER_REQUEST_RACES: Final = frozenset({"ConditionalRequestConflict", "NoSuchUpload"})
_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccountProblem",
    }
)


@contextmanager
def translated(
    bucket: str,
    action: str,
    key: str | None = None,
    *,
    recording_uuid: str | None = None,
    needs: str | None = None,
) -> Iterator[None]:
    """Raise botocore errors from the block as ours (``raise … from``); others pass.

    ``action`` and ``key`` say what was attempted, ``needs`` which permission it takes.
    """
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        ours = _translate(
            exc,
            bucket=bucket,
            action=action,
            key=key,
            recording_uuid=recording_uuid,
            needs=needs,
        )
        if ours is None:
            raise
        raise ours from exc


def _translate(
    exc: ClientError | BotoCoreError,
    *,
    bucket: str,
    action: str,
    key: str | None,
    recording_uuid: str | None,
    needs: str | None,
) -> StoreError | None:
    """The one place botocore's errors become ours; None for programming errors (re-raised)."""
    where = f"s3://{bucket}/{key}" if key else f"bucket {bucket!r}"
    ids: dict[str, Any] = {"recording_uuid": recording_uuid, "s3_key": key}
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        detail = f"{code or status}: {message}" if message else f"{code or status}"
        if code in _THROTTLING_CODES or status == 429 or (status is not None and status >= 500):
            return StoreUnavailable(
                f"S3 is throttling or failing ({detail}) on {action} {where}, even after "
                "retries; try again later",
                **ids,
            )
        if code in _PER_REQUEST_RACES or status == 409:
            return StoreUnavailable(
                f"S3 answered {detail} on {action} {where}: a conflicting request or an "
                "aborted upload; try again later",
                **ids,
            )
        if code == "NoSuchBucket":
            return StoreAccessDenied(
                f"bucket {bucket!r} does not exist: create it, or fix TENIOS_S3_BUCKET / "
                "AWS_ENDPOINT_URL_S3",
                **ids,
            )
        if code.startswith("KMS") or "KMS" in message:
            return StoreAccessDenied(
                f"S3 could not use the KMS key for {action} {where} ({detail}): check "
                "TENIOS_S3_KMS_KEY_ID and that the archiver may kms:GenerateDataKey and "
                "kms:Decrypt with it",
                **ids,
            )
        if code in _DENIED_CODES or status == 403:
            hint = f"; the archiver needs {needs}" if needs else ""
            return StoreAccessDenied(
                f"access denied for {action} on {where} ({detail}){hint}.  Credentials come "
                "from boto3's standard chain (AWS_PROFILE, environment, role) — check the "
                "policy attached to them, and Object Lock retention if deleting",
                **ids,
            )
        return BucketNotUsable(f"S3 refused {action} on {where} ({detail})", **ids)
    if isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError):
        return StoreUnavailable(
            f"S3 could not be reached or the connection broke during {action} {where} "
            f"({type(exc).__name__}: {exc}); try again later",
            **ids,
        )
    if isinstance(
        exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError | NoRegionError
    ):
        return StoreAccessDenied(
            f"no usable AWS credentials/region for {action} on {where} ({type(exc).__name__}): "
            "configure boto3's standard chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, AWS_REGION, or an instance/task role)",
            **ids,
        )
    if isinstance(exc, FlexibleChecksumError):
        return VerificationFailed(
            f"{where}: the bytes S3 sent do not match its stored checksum during {action}",
            **ids,
        )
    return None


def error_code(exc: ClientError) -> str:
    """S3's error code (``NoSuchUpload``, ``PreconditionFailed``, …); empty if none."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int | None:
    """The HTTP status of the failed response, if known."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def is_precondition_failed(exc: ClientError) -> bool:
    """Whether ``If-None-Match: *`` refused the write: the key exists."""
    return http_status(exc) == 412 or error_code(exc) == "PreconditionFailed"
