"""Never-overwriting uploads and their read-back.

Every write carries ``If-None-Match: *``.  Up to the multipart threshold one PUT
with ``ChecksumSHA256``; above it a multipart upload with a SHA-256 per part,
aborted on any failure.  A 412 (the key exists) comes back as ``None`` for the
caller to judge.  The read-back — a HEAD with ``ChecksumMode=ENABLED`` — must show
the size, the SHA-256 and the requested Object Lock mode, retain-until date and
legal hold: S3 verifies checksums on upload, moto (the local stand-in) does not,
so this read-back is the guarantee.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, cast
from urllib.parse import unquote, urlencode

from botocore.exceptions import BotoCoreError, ClientError

from tenios_io import crashpoints
from tenios_io.exceptions import VerificationFailed
from tenios_io.recording.spool import CHUNK_SIZE, Spooled
from tenios_io.store.bucket import Bucket
from tenios_io.store.errors import error_code, is_precondition_failed
from tenios_io.store.responses import b64, version_arg, version_of
from tenios_io.store.retention import Retention, iso, same_instant

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, HeadObjectOutputTypeDef

__all__ = [
    "MAX_PARTS",
    "MAX_SINGLE_PUT",
    "MIN_PART_SIZE",
    "MiB",
    "Put",
    "apply_missing_lock",
    "put_args",
    "put_bytes",
    "put_multipart",
    "put_single",
    "read_back",
    "verify",
]

MiB: Final = 1024 * 1024
MIN_PART_SIZE: Final = 5 * MiB
"""S3's smallest part (all but the last)."""
MAX_PARTS: Final = 10_000
MAX_SINGLE_PUT: Final = 5 * 1024 * MiB


@dataclass(frozen=True)
class Put:
    """What an upload sent, for the read-back to compare against."""

    version_id: str | None
    checksum: str
    """Base64 SHA-256 of the body, or of the concatenated part digests for multipart."""
    parts: int
    """0 for a single PUT."""


class _FileSlice(io.RawIOBase):
    """A read-only, seekable window of an open file: one part's body, streamed by botocore.

    Positions are relative to the window, so botocore's rewind for a retry
    (``seek(0)``) goes back to the part's first byte.
    """

    def __init__(self, file: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._file = file
        self._start = start
        self._length = max(length, 0)
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(base + offset, 0), self._length)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self._length - self._pos
        count = left if size is None or size < 0 else min(size, left)
        if count <= 0:
            return b""
        self._file.seek(self._start + self._pos)
        data = self._file.read(count)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def put_args(
    bucket: Bucket, key: str, content_type: str, metadata: dict[str, str], retention: Retention
) -> dict[str, Any]:
    """The arguments a PUT / CreateMultipartUpload of ``key`` shares: type, metadata,
    encryption and ``retention``."""
    args: dict[str, Any] = {
        "Bucket": bucket.name,
        "Key": key,
        "ContentType": content_type,
        "Metadata": metadata,
        **bucket.sse_args(),
    }
    if retention.lock_mode is not None:
        args["ObjectLockMode"] = retention.lock_mode
        args["ObjectLockRetainUntilDate"] = retention.retain_until
    if retention.legal_hold_header:
        args["ObjectLockLegalHoldStatus"] = "ON"
    if retention.tags:
        args["Tagging"] = urlencode(retention.tags)
    return args


def put_single(
    bucket: Bucket, key: str, spooled: Spooled, metadata: dict[str, str], retention: Retention
) -> Put | None:
    """One PUT of the spool file, streamed from disk; None if the key exists (412)."""
    args = put_args(bucket, key, spooled.content_type, metadata, retention)
    # botocore streams it from disk (with Expect: 100-continue, as for any file body).
    # Reading small files into memory instead (no Expect) measured no CPU gain.
    with spooled.path.open("rb") as body:
        return _put_if_absent(bucket, body, spooled.sha256, ContentLength=spooled.size, **args)


def put_bytes(
    bucket: Bucket,
    key: str,
    body: bytes,
    sha256: str,
    content_type: str,
    metadata: dict[str, str],
    retention: Retention,
) -> Put | None:
    """One PUT of a small in-memory ``body`` whose SHA-256 is ``sha256``; None if the key
    exists (412)."""
    args = put_args(bucket, key, content_type, metadata, retention)
    return _put_if_absent(bucket, body, sha256, **args)


def _put_if_absent(bucket: Bucket, body: Any, sha256: str, **args: Any) -> Put | None:
    """PUT with If-None-Match: * and the SHA-256 checksum; None when the key exists."""
    checksum = b64(bytes.fromhex(sha256))
    try:
        response = bucket.client.put_object(
            Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum, IfNoneMatch="*", **args
        )
    except ClientError as exc:
        if is_precondition_failed(exc):
            return None
        raise
    return Put(version_of(response), checksum, parts=0)


def put_multipart(
    bucket: Bucket,
    key: str,
    spooled: Spooled,
    metadata: dict[str, str],
    retention: Retention,
    *,
    part_size: int,
    recording_uuid: str,
) -> Put | None:
    """A multipart upload of the spool file, aborted on any failure; None if the key exists.

    Unfinished uploads of ``key`` left by a killed worker are aborted first.
    """
    _abort_stale_uploads(bucket, key, recording_uuid)
    args = put_args(bucket, key, spooled.content_type, metadata, retention)
    upload_id = bucket.client.create_multipart_upload(ChecksumAlgorithm="SHA256", **args)[
        "UploadId"
    ]
    try:
        parts, composite = _upload_parts(bucket, key, upload_id, spooled, part_size)
        try:
            response = bucket.client.complete_multipart_upload(
                Bucket=bucket.name,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if not is_precondition_failed(exc):
                raise
            _abort(bucket, key, upload_id, recording_uuid)
            return None
    except BaseException:
        _abort(bucket, key, upload_id, recording_uuid)
        raise
    return Put(version_of(response), composite, parts=len(parts))


def _part_size_for(part_size: int, size: int) -> int:
    # S3 allows 10,000 parts: grow the part (in whole MiB) for very large files.
    needed = math.ceil(size / MAX_PARTS)
    return max(part_size, math.ceil(needed / MiB) * MiB)


def _upload_parts(
    bucket: Bucket, key: str, upload_id: str, spooled: Spooled, part_size: int
) -> tuple[list[CompletedPartTypeDef], str]:
    """Upload the spool file part by part, streamed from disk: memory stays ~1 MiB.

    Each part is read twice — once here to hash it (1 MiB at a time), once by
    botocore to send it — and S3 checks what it receives against that hash.
    """
    part_size = _part_size_for(part_size, spooled.size)
    parts: list[CompletedPartTypeDef] = []
    digests = bytearray()
    whole = hashlib.sha256()
    total = 0
    with spooled.path.open("rb") as file:
        for start in range(0, max(spooled.size, 1), part_size):
            body = _FileSlice(file, start, min(part_size, spooled.size - start))
            part = hashlib.sha256()
            while chunk := body.read(CHUNK_SIZE):
                part.update(chunk)
                whole.update(chunk)
                total += len(chunk)
            body.seek(0)
            number = len(parts) + 1
            checksum = b64(part.digest())
            response = bucket.client.upload_part(
                Bucket=bucket.name,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=cast("IO[bytes]", body),  # a file-like window; typeshed's IO is nominal
                ContentLength=len(body),
                ChecksumSHA256=checksum,
            )
            parts.append(
                {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
            )
            digests += part.digest()
            crashpoints.reached("multipart_part_uploaded")
        total += len(file.read(1))  # a spool that grew since it was hashed
    if whole.hexdigest() != spooled.sha256 or total != spooled.size:
        raise VerificationFailed(
            f"spool file {spooled.path} changed after it was hashed "
            f"(now {total} bytes, SHA-256 {whole.hexdigest()}; expected {spooled.size} bytes, "
            f"{spooled.sha256}); nothing was archived under {key}",
            s3_key=key,
        )
    return parts, b64(hashlib.sha256(bytes(digests)).digest())


def _abort_stale_uploads(bucket: Bucket, key: str, recording_uuid: str) -> None:
    """Abort unfinished multipart uploads of exactly ``key``: a worker that was killed
    mid-upload leaves them.  Safe, because only the lease holder of the recording
    writes its (fixed) key, and that is us now."""
    pages = bucket.client.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket.name, Prefix=key
    )
    for page in pages:
        for upload in page.get("Uploads", []):
            if upload.get("Key") == key and "UploadId" in upload:
                bucket.log.info("aborting a stale multipart upload of %s", key)
                _abort(bucket, key, upload["UploadId"], recording_uuid)


def _abort(bucket: Bucket, key: str, upload_id: str, recording_uuid: str) -> None:
    try:
        bucket.client.abort_multipart_upload(Bucket=bucket.name, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and error_code(exc) == "NoSuchUpload":
            return
        bucket.log.warning(
            "could not abort multipart upload %s of s3://%s/%s (%s): its parts stay until "
            "a lifecycle rule AbortIncompleteMultipartUpload removes them",
            upload_id,
            bucket.name,
            key,
            type(exc).__name__,
        )


# -- read-back ------------------------------------------------------------------------------


def read_back(bucket: Bucket, key: str, put: Put, retention: Retention) -> HeadObjectOutputTypeDef:
    """HEAD the version just written (finishing a multipart upload's lock); never None."""
    head = bucket.head(key, put.version_id, checksum=True)
    if head is None:
        raise VerificationFailed(
            f"read-back of s3://{bucket.name}/{key} found nothing right after the upload",
            s3_key=key,
        )
    if put.parts and apply_missing_lock(bucket, key, head, retention):
        head = bucket.head(key, put.version_id, checksum=True)
        if head is None:
            raise VerificationFailed(f"s3://{bucket.name}/{key} vanished", s3_key=key)
    return head


def apply_missing_lock(
    bucket: Bucket, key: str, head: HeadObjectOutputTypeDef, retention: Retention
) -> bool:
    """Set the retention / legal hold ``retention`` asks for where ``head`` lacks them.

    Needed after a multipart upload on some S3-compatible stores (moto among
    them) that drop CreateMultipartUpload's Object Lock headers, and after a
    crash between an upload and this repair.  Applied to exactly the version
    in ``head``; returns whether anything was changed.
    """
    version = version_arg(version_of(head))
    changed = False
    if retention.lock_mode and retention.retain_until and not head.get("ObjectLockMode"):
        bucket.client.put_object_retention(
            Bucket=bucket.name,
            Key=key,
            Retention={"Mode": retention.lock_mode, "RetainUntilDate": retention.retain_until},
            **version,
        )
        changed = True
    if retention.legal_hold_header and head.get("ObjectLockLegalHoldStatus") != "ON":
        bucket.client.put_object_legal_hold(
            Bucket=bucket.name, Key=key, LegalHold={"Status": "ON"}, **version
        )
        changed = True
    return changed


def verify(
    bucket: Bucket,
    key: str,
    head: HeadObjectOutputTypeDef,
    sha256: str,
    size: int,
    put: Put,
    retention: Retention,
    recording_uuid: str | None,
) -> None:
    """VerificationFailed unless ``head`` shows what ``put`` sent, with ``retention``."""
    problems = []
    if head.get("ContentLength") != size:
        problems.append(f"size {head.get('ContentLength')} != {size}")
    found_meta = unquote(head.get("Metadata", {}).get("sha256", ""))
    if found_meta != sha256:
        problems.append(f"metadata sha256 {found_meta or '(none)'} != {sha256}")
    checksum = head.get("ChecksumSHA256")
    if put.parts == 0:
        if checksum != put.checksum:
            problems.append(f"ChecksumSHA256 {checksum or '(none)'} != {put.checksum}")
    elif checksum:
        value, _, count = checksum.partition("-")
        if value != put.checksum or (count and count != str(put.parts)):
            problems.append(f"composite ChecksumSHA256 {checksum} != {put.checksum}-{put.parts}")
    if retention.lock_mode is not None:
        if head.get("ObjectLockMode") != retention.lock_mode:
            problems.append(
                f"Object Lock mode {head.get('ObjectLockMode') or '(none)'} != "
                f"{retention.lock_mode}"
            )
        found_until = head.get("ObjectLockRetainUntilDate")
        if not same_instant(found_until, retention.retain_until):
            problems.append(
                f"retain-until {iso(found_until) if found_until else '(none)'} != "
                f"{iso(retention.retain_until) if retention.retain_until else '(none)'}"
            )
    if retention.legal_hold_header and head.get("ObjectLockLegalHoldStatus") != "ON":
        problems.append(f"legal hold {head.get('ObjectLockLegalHoldStatus') or '(none)'} != ON")
    if bucket.sse is not None and head.get("ServerSideEncryption") not in (None, bucket.sse):
        problems.append(f"encryption {head.get('ServerSideEncryption')} != {bucket.sse}")
    if problems:
        raise VerificationFailed(
            f"read-back of s3://{bucket.name}/{key} (version {head.get('VersionId')}) does "
            f"not match what was uploaded: {'; '.join(problems)}.  If the lock fields are "
            "missing, the archiver may lack s3:GetObjectRetention / s3:GetObjectLegalHold.",
            recording_uuid=recording_uuid,
            s3_key=key,
        )
