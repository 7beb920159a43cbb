"""The store's writing part: verified, never-overwriting uploads of recordings and documents.

:class:`ArchiveWriter` keys each recording (:mod:`.keys`), uploads it with
``If-None-Match: *`` and verifies it by read-back (:mod:`.upload`), protected as its
:class:`~tenios_io.store.retention_policy.RetentionPolicy` plans, carrying its custody
facts as the object's own user metadata (:mod:`.metadata`, in the same PUT: one
write per recording).  It writes small documents (custody manifests, checkpoints,
the custody log) the same way, and proves the bucket usable before a run
(:meth:`ArchiveWriter.check`).  Every S3 call runs inside :meth:`Bucket.translated`,
so only our errors leave it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from tenios_io import __version__
from tenios_io.exceptions import ArchiveConflict, BucketNotUsable, StoreUnavailable
from tenios_io.recording.spool import Spooled
from tenios_io.store.bucket import Bucket
from tenios_io.store.errors import error_code, http_status, is_precondition_failed
from tenios_io.store.keys import PROBE_BODY, object_key, probe_key
from tenios_io.store.metadata import custody_metadata, encode_metadata
from tenios_io.store.responses import b64, object_info, version_of
from tenios_io.store.results import ArchivedObject, BucketStatus, RetentionMode
from tenios_io.store.retention import NO_RETENTION, Retention, parse_iso, retention_mode_of
from tenios_io.store.retention_policy import RetentionPolicy
from tenios_io.store.upload import (
    MAX_SINGLE_PUT,
    MIN_PART_SIZE,
    MiB,
    apply_missing_lock,
    put_args,
    put_bytes,
    put_multipart,
    put_single,
    read_back,
    verify,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

__all__ = ["ArchiveWriter"]

_ARCHIVE_NEEDS: Final = (
    "s3:PutObject, s3:GetObject, s3:GetObjectVersion, s3:AbortMultipartUpload, and with Object "
    "Lock s3:PutObjectRetention, s3:PutObjectLegalHold, s3:GetObjectRetention, "
    "s3:GetObjectLegalHold (without it s3:PutObjectTagging, s3:GetObjectTagging)"
)
_DOCUMENT_NEEDS: Final = (
    "s3:PutObject, s3:GetObject, s3:GetObjectVersion, and with Object Lock "
    "s3:PutObjectRetention, s3:GetObjectRetention"
)
#: A conditional PUT that lost to another writer: a concurrent conditional write
#: (409), or an If-Match on a key deleted meanwhile (404).
_LOST_RACE: Final = frozenset({"ConditionalRequestConflict", "NoSuchKey"})


class ArchiveWriter:
    """Verified, never-overwriting uploads into one bucket under ``prefix`` (validated).

    Objects larger than ``multipart_threshold`` bytes go up in ``part_size`` parts,
    one at a time, so memory stays near one part whatever the recording's size.
    """

    def __init__(
        self,
        bucket: Bucket,
        prefix: str,
        policy: RetentionPolicy,
        *,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 16 * MiB,
        tool_version: str = __version__,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(
                f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB, S3's minimum)"
            )
        if not 0 < multipart_threshold <= MAX_SINGLE_PUT:
            raise ValueError("multipart_threshold must be between 1 byte and 5 GiB")
        self._s3 = bucket
        self._log = bucket.log
        self._prefix = prefix
        self._policy = policy
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size
        self._tool_version = tool_version

    @property
    def bucket(self) -> str:
        return self._s3.name

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def retention_mode(self) -> RetentionMode:
        """The retention applied to what is written."""
        return self._policy.mode

    @property
    def retention_days(self) -> int:
        """The retention period in days (for recordings: from the recording's date)."""
        return self._policy.days

    def key_for(self, recording_uuid: str, day: date, extension: str) -> str:
        """This store's :func:`object_key`."""
        return object_key(self._prefix, recording_uuid, day, extension)

    def check(self) -> BucketStatus:
        """Prove the bucket usable (exists, reachable, writable, readable) and describe it.

        Raises :class:`BucketNotUsable` naming the bucket and what to fix;
        :class:`StoreUnavailable` if S3 cannot be reached.
        """
        name, client = self._s3.name, self._s3.client
        with self._s3.translated("HeadBucket", needs="s3:ListBucket on the bucket"):
            try:
                client.head_bucket(Bucket=name)
            except ClientError as exc:
                if http_status(exc) != 404:
                    raise
                raise BucketNotUsable(
                    f"bucket {name!r} does not exist (or is in another partition): "
                    "create it, or fix TENIOS_S3_BUCKET / AWS_ENDPOINT_URL_S3"
                ) from exc
        with self._s3.translated("GetBucketVersioning", needs="s3:GetBucketVersioning"):
            versioning = client.get_bucket_versioning(Bucket=name).get("Status", "Disabled")
        lock, default_retention = self._policy.lock_configuration()
        probe = probe_key(self._prefix)
        with self._s3.translated("PutObject", probe, needs="s3:PutObject on the prefix"):
            try:
                client.put_object(
                    Bucket=name,
                    Key=probe,
                    Body=PROBE_BODY,
                    ContentType="text/plain",
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64(hashlib.sha256(PROBE_BODY).digest()),
                    IfNoneMatch="*",
                    **self._s3.sse_args(),
                )
            except ClientError as exc:
                if not is_precondition_failed(exc):
                    raise
        with self._s3.translated("HeadObject", probe, needs="s3:GetObject on the prefix"):
            client.head_object(Bucket=name, Key=probe)

        warnings = []
        if versioning != "Enabled":
            warnings.append(
                f"versioning is {versioning.lower()} on {name!r}: a delete or an "
                "overwrite by another writer would destroy the only copy; enable versioning"
            )
        if not lock and self._policy.mode != "none":
            warnings.append(
                f"bucket {name!r} has no Object Lock: retention "
                f"({self._policy.mode}) is recorded as object tags but not enforced; "
                "archive into a bucket created with Object Lock enabled"
            )
        return BucketStatus(
            bucket=name,
            versioning=versioning,
            object_lock=lock,
            default_retention=default_retention,
            probe_key=probe,
            retention_mode=self._policy.mode,
            warnings=tuple(warnings),
        )

    def archive(
        self,
        spooled: Spooled,
        *,
        recording_uuid: str,
        call_uuid: str | None,
        source: str,
        key_date: date,
        legal_hold: bool = False,
        retention_days: int | None = None,
        audio_metadata: Mapping[str, str] | None = None,
        fetched_at: str | None = None,
    ) -> ArchivedObject:
        """Upload ``spooled`` under its key, never overwriting, and verify it by read-back.

        The one PUT carries the object's custody facts as user metadata
        (:func:`~tenios_io.store.metadata.custody_metadata`): the uuids, SHA-256, size,
        ``source``, ``fetched_at`` (as the ledger writes times), this tool's version and
        ``audio_metadata`` (codec, channels, sample rate, duration).
        ``retention_days`` overrides the store's policy for this recording.
        Raises ArchiveConflict (other bytes under the key), VerificationFailed
        (read-back differs), BucketNotUsable, or StoreUnavailable (try again).
        """
        key = self.key_for(recording_uuid, key_date, spooled.extension)
        recording_uuid = recording_uuid.lower()  # canonical, as in the key
        retention = self._policy.for_recording(key, key_date, retention_days, legal_hold)
        metadata = custody_metadata(
            recording_uuid=recording_uuid,
            call_uuid=call_uuid,
            sha256=spooled.sha256,
            size=spooled.size,
            source=source,
            fetched_at=fetched_at,
            tool_version=self._tool_version,
            audio=audio_metadata,
        )
        with self._s3.translated(
            "archive", key, recording_uuid=recording_uuid, needs=_ARCHIVE_NEEDS
        ):
            if spooled.size > self._multipart_threshold:
                # A re-run after a crash should not push gigabytes only to learn of a 412.
                existing = self._s3.head(key, checksum=True)
                put = (
                    None
                    if existing
                    else put_multipart(
                        self._s3,
                        key,
                        spooled,
                        metadata,
                        retention,
                        part_size=self._part_size,
                        recording_uuid=recording_uuid,
                    )
                )
            else:
                existing, put = None, put_single(self._s3, key, spooled, metadata, retention)
            if put is None:
                return self._already_archived(
                    key, spooled, retention, recording_uuid, call_uuid, source, existing
                )
            head = read_back(self._s3, key, put, retention)
            verify(
                self._s3, key, head, spooled.sha256, spooled.size, put, retention, recording_uuid
            )
        self._log.info(
            "archived %s (%d bytes) to s3://%s/%s version %s",
            recording_uuid,
            spooled.size,
            self._s3.name,
            key,
            version_of(head),
        )
        return ArchivedObject(
            bucket=self._s3.name,
            key=key,
            version_id=version_of(head) or put.version_id,
            sha256=spooled.sha256,
            size=spooled.size,
            content_type=spooled.content_type,
            retention_mode=retention.mode,
            retain_until=retention.retain_until,
            retention_enforced=retention.lock_mode is not None,
            already_archived=False,
            legal_hold=legal_hold,
            recording_uuid=recording_uuid,
            call_uuid=call_uuid,
            source=source,
        )

    def _metadata(self, **values: str | None) -> dict[str, str]:
        """A document's metadata: ``values`` and this tool's version."""
        return encode_metadata({**values, "tool_version": self._tool_version})

    def _already_archived(
        self,
        key: str,
        spooled: Spooled,
        retention: Retention,
        recording_uuid: str,
        call_uuid: str | None,
        source: str,
        head: HeadObjectOutputTypeDef | None = None,
    ) -> ArchivedObject:
        """The key exists: same bytes → report it (finishing its retention); else conflict."""
        head = head or self._s3.head(key, checksum=True)
        if head is None:
            raise StoreUnavailable(
                f"s3://{self._s3.name}/{key} refused the upload as existing, but HEAD finds "
                "nothing (deleted meanwhile?); try again",
                recording_uuid=recording_uuid,
                s3_key=key,
            )
        info = object_info(key, head)
        if info.sha256 != spooled.sha256 or info.size != spooled.size:
            raise ArchiveConflict(
                f"s3://{self._s3.name}/{key} already holds other bytes: the bucket has SHA-256 "
                f"{info.sha256 or '(unknown)'} ({info.size} bytes), this attempt has "
                f"{spooled.sha256} ({spooled.size} bytes).  Nothing was overwritten; compare "
                "the two and resolve by hand.",
                recording_uuid=recording_uuid,
                s3_key=key,
                expected_sha256=spooled.sha256,
                found_sha256=info.sha256,
            )
        # Same bytes.  If the crash came before the lock was applied, apply it now.
        if apply_missing_lock(self._s3, key, head, retention):
            head = self._s3.head(key, info.version_id, checksum=True)
            assert head is not None
            info = object_info(key, head)
        legal_hold = info.legal_hold
        if info.lock_mode is not None:
            mode: RetentionMode = info.lock_mode
            retain_until, enforced = info.retain_until, True
        else:
            tags = self._s3.tags(key, info.version_id)
            mode = retention_mode_of(tags.get("retention-mode"))
            retain_until, enforced = parse_iso(tags.get("retain-until")), False
            legal_hold = legal_hold or tags.get("legal-hold") == "on"
        if retention.legal_hold and not legal_hold:  # asked for now, on a bucket without a lock
            self._policy.set_legal_hold(key, info.version_id, True)
            legal_hold = True
        self._log.info("%s was already archived at s3://%s/%s", recording_uuid, self._s3.name, key)
        return ArchivedObject(
            bucket=self._s3.name,
            key=key,
            version_id=info.version_id,
            sha256=spooled.sha256,
            size=spooled.size,
            content_type=info.content_type or spooled.content_type,
            retention_mode=mode,
            retain_until=retain_until,
            retention_enforced=enforced,
            already_archived=True,
            legal_hold=legal_hold,
            recording_uuid=recording_uuid,
            call_uuid=call_uuid,
            source=source,
        )

    def put_document(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        retain_until: datetime | None = None,
    ) -> str | None:
        """Write a small document at ``key``, never overwriting; return its version id.

        The PUT carries ``If-None-Match: *``, the store's encryption and — where the
        bucket has Object Lock, the store's ``retention_mode`` is not ``none`` and
        ``retain_until`` (timezone-aware) is given and still ahead — the store's lock
        mode until ``retain_until``; it is verified by read-back.  If ``key`` already
        exists, its version id is returned when it holds exactly ``body`` (an earlier
        attempt wrote it; nothing new is written), and ArchiveConflict is raised
        otherwise.  None as version id: the bucket is not versioned.
        """
        if retain_until is not None and retain_until.tzinfo is None:
            raise ValueError("retain_until must be timezone-aware")
        sha256 = hashlib.sha256(body).hexdigest()
        retention = self._policy.for_document(key, retain_until)
        metadata = self._metadata(sha256=sha256)
        with self._s3.translated("PutObject", key, needs=_DOCUMENT_NEEDS):
            put = put_bytes(self._s3, key, body, sha256, content_type, metadata, retention)
            if put is None:
                return self._accept_existing_document(key, body, sha256)
            head = read_back(self._s3, key, put, retention)
            verify(self._s3, key, head, sha256, len(body), put, retention, None)
        return version_of(head) or put.version_id

    def replace_document(
        self, key: str, body: bytes, *, content_type: str, etag: str | None
    ) -> bool:
        """Write ``body`` at ``key`` if it still holds what was read with ETag ``etag``
        (``If-Match``), or, with ``etag`` None, if nothing is there yet
        (``If-None-Match: *``); a new version in a versioned bucket.

        False when another writer changed the key first (412, or 409 for a conditional
        write that raced another, or 404 when it was deleted): read it again and decide
        again.  Only for pointers to documents that are themselves never overwritten —
        the custody log's latest checkpoint names one kept under its own key.
        """
        sha256 = hashlib.sha256(body).hexdigest()
        args = put_args(self._s3, key, content_type, self._metadata(sha256=sha256), NO_RETENTION)
        condition: dict[str, Any] = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        with self._s3.translated("PutObject", key, needs=_DOCUMENT_NEEDS):
            try:
                self._s3.client.put_object(
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64(bytes.fromhex(sha256)),
                    **condition,
                    **args,
                )
            except ClientError as exc:
                if is_precondition_failed(exc) or error_code(exc) in _LOST_RACE:
                    return False
                raise
        return True

    def _accept_existing_document(self, key: str, body: bytes, sha256: str) -> str | None:
        """``key`` exists: its version id if it holds exactly ``body``, else ArchiveConflict."""
        try:
            response = self._s3.client.get_object(Bucket=self._s3.name, Key=key)
        except ClientError as exc:
            if http_status(exc) != 404:
                raise
            raise StoreUnavailable(
                f"s3://{self._s3.name}/{key} refused the write as existing, but GET finds "
                "nothing (deleted meanwhile?); try again",
                s3_key=key,
            ) from exc
        stream = response["Body"]
        try:
            existing = stream.read(len(body) + 1)  # one byte more shows a longer document
        finally:
            stream.close()
        if existing != body:
            found = hashlib.sha256(existing).hexdigest() if len(existing) <= len(body) else None
            raise ArchiveConflict(
                f"s3://{self._s3.name}/{key} already holds a different document "
                f"(SHA-256 {found or '(longer than ours)'}, this one has {sha256}, "
                f"{len(body)} bytes).  Nothing was overwritten; compare the two and resolve "
                "by hand.",
                s3_key=key,
                expected_sha256=sha256,
                found_sha256=found,
            )
        self._log.info("s3://%s/%s was already written", self._s3.name, key)
        return version_of(response)
