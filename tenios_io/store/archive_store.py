"""ArchiveStore: verified, never-overwriting uploads into one bucket, and reading them back.

It keys each recording (:mod:`.keys`), uploads it with ``If-None-Match: *`` and
verifies it by read-back (:mod:`.upload`), protects it with Object Lock or, where
the bucket has none, records its retention as tags (:mod:`.retention`), writes its
custody facts as the object's own user metadata (:mod:`.metadata`, in the same PUT:
one write per recording), and serves the audit's reads (including the ``.json``
sidecars earlier versions wrote, :mod:`.sidecar`).  Every S3 call
runs inside :meth:`Bucket.translated`, so only our errors leave it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import ClientError

from tenios_io import __version__
from tenios_io.checksum import CHUNK_SIZE, Spooled
from tenios_io.exceptions import (
    ArchiveConflict,
    BucketNotUsable,
    StoreUnavailable,
    VerificationFailed,
)
from tenios_io.sources import Sink
from tenios_io.store.bucket import Bucket
from tenios_io.store.errors import error_code, http_status, is_precondition_failed
from tenios_io.store.keys import object_key, probe_key, sidecar_key, validate_prefix
from tenios_io.store.metadata import custody_metadata, encode_metadata
from tenios_io.store.responses import b64, object_info, version_arg, version_of
from tenios_io.store.results import (
    RETENTION_MODES,
    ArchivedObject,
    BucketStatus,
    ObjectInfo,
    ObjectSummary,
    RetentionMode,
    SseMode,
)
from tenios_io.store.retention import (
    NO_RETENTION,
    Retention,
    iso,
    lock_mode_for,
    parse_iso,
    retention_mode_of,
)
from tenios_io.store.sidecar import read_json
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
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

    from tenios_io.config import Settings

__all__ = ["ArchiveStore"]

LOGGER_NAME: Final = "tenios_io.store"
"""The store's default logger (the package's name, whichever module logs)."""
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
_PROBE_BODY: Final = b"tenios-archive write probe: safe to keep, safe to delete\n"


class ArchiveStore:
    """Verified, never-overwriting uploads of spooled recordings into one bucket.

    ``s3_client`` is injected (see :func:`make_s3_client`).  ``retention_days``
    counts from the recording's date (midnight UTC).  Objects larger than
    ``multipart_threshold`` bytes go up in ``part_size`` parts, one at a time, so
    memory stays near one part whatever the recording's size.
    """

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        *,
        prefix: str = "recordings",
        retention_mode: RetentionMode = "governance",
        retention_days: int = 2557,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 16 * MiB,
        sse: SseMode | None = None,
        kms_key_id: str | None = None,
        tool_version: str = __version__,
        logger: logging.Logger | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must be a bucket name")
        if retention_mode not in RETENTION_MODES:
            raise ValueError(f"retention_mode must be one of {RETENTION_MODES}")
        if retention_days < 0:
            raise ValueError("retention_days must be >= 0")
        if part_size < MIN_PART_SIZE:
            raise ValueError(
                f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB, S3's minimum)"
            )
        if not 0 < multipart_threshold <= MAX_SINGLE_PUT:
            raise ValueError("multipart_threshold must be between 1 byte and 5 GiB")
        if sse not in (None, "AES256", "aws:kms"):
            raise ValueError("sse must be None, 'AES256' or 'aws:kms'")
        if kms_key_id is not None and sse != "aws:kms":
            raise ValueError("kms_key_id is only used with sse='aws:kms'")
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self._s3 = Bucket(s3_client, bucket, sse=sse, kms_key_id=kms_key_id, log=self._log)
        self._prefix = validate_prefix(prefix)
        self._retention_mode: RetentionMode = retention_mode
        self._retention_days = retention_days
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size
        self._tool_version = tool_version
        self._object_lock: bool | None = None
        self._warned_unenforced = False

    @classmethod
    def from_settings(cls, settings: Settings, s3_client: S3Client) -> ArchiveStore:
        """A store configured from :class:`~tenios_io.config.Settings`."""
        return cls(
            s3_client,
            settings.require_bucket(),
            prefix=settings.s3_prefix,
            retention_mode=settings.retention_mode,
            retention_days=settings.retention_days,
            multipart_threshold=settings.multipart_threshold_mb * MiB,
            sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id,
        )

    @property
    def bucket(self) -> str:
        return self._s3.name

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def retention_mode(self) -> RetentionMode:
        """The retention this store applies to what it writes."""
        return self._retention_mode

    @property
    def retention_days(self) -> int:
        """The store's retention period in days (for recordings: from the recording's date)."""
        return self._retention_days

    def key_for(self, recording_uuid: str, day: date, extension: str) -> str:
        """This store's :func:`object_key`."""
        return object_key(self._prefix, recording_uuid, day, extension)

    # -- bucket --------------------------------------------------------------------------

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
        lock, default_retention = self._read_lock_configuration()
        probe = probe_key(self._prefix)
        with self._s3.translated("PutObject", probe, needs="s3:PutObject on the prefix"):
            try:
                client.put_object(
                    Bucket=name,
                    Key=probe,
                    Body=_PROBE_BODY,
                    ContentType="text/plain",
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64(hashlib.sha256(_PROBE_BODY).digest()),
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
        if not lock and self._retention_mode != "none":
            warnings.append(
                f"bucket {name!r} has no Object Lock: retention "
                f"({self._retention_mode}) is recorded as object tags but not enforced; "
                "archive into a bucket created with Object Lock enabled"
            )
        return BucketStatus(
            bucket=name,
            versioning=versioning,
            object_lock=lock,
            default_retention=default_retention,
            probe_key=probe,
            retention_mode=self._retention_mode,
            warnings=tuple(warnings),
        )

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock (asked once per store, then remembered)."""
        if self._object_lock is None:
            self._read_lock_configuration()
        assert self._object_lock is not None
        return self._object_lock

    def _read_lock_configuration(self) -> tuple[bool, str | None]:
        with self._s3.translated(
            "GetObjectLockConfiguration", needs="s3:GetBucketObjectLockConfiguration"
        ):
            try:
                conf = self._s3.client.get_object_lock_configuration(Bucket=self._s3.name)
            except ClientError as exc:
                if error_code(exc) != "ObjectLockConfigurationNotFoundError":
                    raise
                self._object_lock = False
                return False, None
        lock_conf = conf.get("ObjectLockConfiguration", {})
        enabled = lock_conf.get("ObjectLockEnabled") == "Enabled"
        rule = lock_conf.get("Rule", {}).get("DefaultRetention")
        default = None
        if rule:
            amount = rule.get("Days") or rule.get("Years")
            unit = "days" if "Days" in rule else "years"
            default = f"{rule.get('Mode', '?')} {amount} {unit}"
        self._object_lock = enabled
        return enabled, default

    # -- archiving -----------------------------------------------------------------------

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
        retention = self._plan_retention(key, key_date, retention_days, legal_hold)
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

    def _plan_retention(
        self, key: str, key_date: date, retention_days: int | None, legal_hold: bool
    ) -> Retention:
        days = self._retention_days if retention_days is None else retention_days
        if days < 0:
            raise ValueError("retention_days must be >= 0")
        lock = (
            self.object_lock_enabled() if (self._retention_mode != "none" or legal_hold) else False
        )
        tags: dict[str, str] = {}
        if legal_hold and not lock:
            tags["legal-hold"] = "on"
            self._warn_unenforced()
        if self._retention_mode == "none":
            return Retention("none", None, None, legal_hold, legal_hold and lock, tags)
        retain_until = datetime.combine(key_date, time(0), tzinfo=UTC) + timedelta(days=days)
        lock_mode = lock_mode_for(self._retention_mode)
        if not lock:
            self._warn_unenforced()
            lock_mode = None
        elif retain_until <= datetime.now(UTC):
            # S3 refuses a retain-until date in the past: the recording's retention is over.
            self._log.info(
                "retention of s3://%s/%s ended %s; archiving it without an Object Lock period",
                self._s3.name,
                key,
                retain_until.date(),
            )
            lock_mode = None
        if lock_mode is None:
            tags["retention-mode"] = self._retention_mode
            tags["retain-until"] = iso(retain_until)
        return Retention(
            self._retention_mode, retain_until, lock_mode, legal_hold, legal_hold and lock, tags
        )

    def _warn_unenforced(self) -> None:
        if not self._warned_unenforced:
            self._warned_unenforced = True
            self._log.warning(
                "bucket %s has no Object Lock: retention and legal holds are recorded as object "
                "tags but NOT enforced (anyone allowed to delete can delete); archive into a "
                "bucket created with Object Lock enabled",
                self._s3.name,
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
            self.set_legal_hold(key, info.version_id, True)
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

    # -- legal hold -----------------------------------------------------------------------

    def set_legal_hold(self, key: str, version_id: str | None, on: bool) -> None:
        """Turn an object version's legal hold on or off (a tag when there is no Object Lock)."""
        status: Literal["ON", "OFF"] = "ON" if on else "OFF"
        version = version_arg(version_id)
        with self._s3.translated("PutObjectLegalHold", key, needs="s3:PutObjectLegalHold"):
            if self.object_lock_enabled():
                self._s3.client.put_object_legal_hold(
                    Bucket=self._s3.name, Key=key, LegalHold={"Status": status}, **version
                )
                head = self._s3.head(key, version_id)
                found = head.get("ObjectLockLegalHoldStatus", "OFF") if head else None
                if found != status:
                    raise VerificationFailed(
                        f"legal hold of s3://{self._s3.name}/{key} reads {found or '(missing)'} "
                        f"after setting {status}",
                        s3_key=key,
                    )
                return
            self._warn_unenforced()
            tags = self._s3.tags(key, version_id)
            if on:
                tags["legal-hold"] = "on"
            else:
                tags.pop("legal-hold", None)
            self._s3.client.put_object_tagging(
                Bucket=self._s3.name,
                Key=key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
                **version,
            )

    # -- documents ------------------------------------------------------------------------

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
        retention = self._document_retention(key, retain_until)
        metadata = self._metadata(sha256=sha256)
        with self._s3.translated("PutObject", key, needs=_DOCUMENT_NEEDS):
            put = put_bytes(self._s3, key, body, sha256, content_type, metadata, retention)
            if put is None:
                return self._accept_existing_document(key, body, sha256)
            head = read_back(self._s3, key, put, retention)
            verify(self._s3, key, head, sha256, len(body), put, retention, None)
        return version_of(head) or put.version_id

    def read_document(self, key: str) -> tuple[bytes, str] | None:
        """A small document's bytes and ETag (for :meth:`replace_document`); None if absent."""
        with self._s3.translated("GetObject", key, needs="s3:GetObject"):
            try:
                response = self._s3.client.get_object(Bucket=self._s3.name, Key=key)
            except ClientError as exc:
                if http_status(exc) == 404:
                    return None
                raise
            stream = response["Body"]
            try:
                body = stream.read()
            finally:
                stream.close()
        return body, response["ETag"]

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

    def _document_retention(self, key: str, retain_until: datetime | None) -> Retention:
        if retain_until is None or self._retention_mode == "none":
            return NO_RETENTION
        if not self.object_lock_enabled():
            return NO_RETENTION
        if retain_until <= datetime.now(UTC):
            # S3 refuses a retain-until date in the past.
            self._log.info(
                "retention of s3://%s/%s would have ended %s; writing it without an Object "
                "Lock period",
                self._s3.name,
                key,
                retain_until.date(),
            )
            return NO_RETENTION
        lock_mode = lock_mode_for(self._retention_mode)
        return Retention(self._retention_mode, retain_until, lock_mode, False, False, {})

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

    # -- custody sidecars of earlier versions -------------------------------------------

    def read_sidecar(self, key: str) -> dict[str, Any] | None:
        """The ``.json`` sidecar an earlier version wrote beside the object at ``key``, as a
        dict, or None if there is none (this version writes none: the object carries its
        custody facts as metadata)."""
        with self._s3.translated("GetObject", sidecar_key(key), needs="s3:GetObject"):
            try:
                document = read_json(self._s3, sidecar_key(key), None)
            except ClientError as exc:
                if http_status(exc) == 404:
                    return None
                raise
        if not isinstance(document, dict):
            raise VerificationFailed(
                f"sidecar s3://{self._s3.name}/{sidecar_key(key)} is not a JSON object",
                s3_key=sidecar_key(key),
            )
        return document

    # -- audit helpers --------------------------------------------------------------------

    def head(
        self, key: str, version_id: str | None = None, *, with_tags: bool = False
    ) -> ObjectInfo | None:
        """What S3 says about an object (version); None if it does not exist."""
        with self._s3.translated("HeadObject", key, needs="s3:GetObject / s3:GetObjectVersion"):
            head = self._s3.head(key, version_id, checksum=True)
            if head is None:
                return None
            info = object_info(key, head)
            if with_tags:
                tags = self._s3.tags(key, info.version_id)
                info = dataclasses.replace(info, tags=tags)
        return info

    def iter_objects(
        self, prefix: str | None = None, *, page_size: int = 1000
    ) -> Iterator[ObjectSummary]:
        """Every object under ``prefix`` (default: this store's prefix), page by page."""
        if prefix is None:
            prefix = f"{self._prefix}/" if self._prefix else ""
        paginator = self._s3.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self._s3.name, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        with self._s3.translated("ListObjectsV2", prefix, needs="s3:ListBucket"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectSummary(
                        key=item.get("Key", ""),
                        size=item.get("Size", 0),
                        etag=item.get("ETag", "").strip('"'),
                        last_modified=item.get("LastModified"),
                    )

    def download(self, key: str, sink: Sink, *, version_id: str | None = None) -> int:
        """Stream an object (version) into ``sink`` 1 MiB at a time; return the byte count."""
        version = version_arg(version_id)
        written = 0
        with self._s3.translated("GetObject", key, needs="s3:GetObject / s3:GetObjectVersion"):
            try:
                response = self._s3.client.get_object(
                    Bucket=self._s3.name, Key=key, ChecksumMode="ENABLED", **version
                )
            except ClientError as exc:
                if http_status(exc) != 404:
                    raise
                raise VerificationFailed(
                    f"s3://{self._s3.name}/{key} (version {version_id or 'latest'}) does not exist",
                    s3_key=key,
                ) from exc
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    written += sink.write(chunk)
            finally:
                body.close()
        return written

    def hash_object(self, key: str, *, version_id: str | None = None) -> tuple[str, int]:
        """Stream an object (version) through SHA-256 without storing it: ``(hex, size)``.

        The deep check: HEAD shows what S3 recorded; this proves the bytes it returns.
        """
        sink = _HashingSink()
        self.download(key, sink, version_id=version_id)
        return sink.hash.hexdigest(), sink.size

    def delete_version(self, key: str, version_id: str, *, bypass_governance: bool = False) -> None:
        """Delete one object version for good (for purging after retention).

        A version still under Object Lock retention or legal hold is refused by S3;
        that arrives as BucketNotUsable naming the key.
        """
        if not version_id:
            raise ValueError("delete_version needs a version id (never deletes 'the latest')")
        extra: dict[str, Any] = {"BypassGovernanceRetention": True} if bypass_governance else {}
        with self._s3.translated(
            "DeleteObject",
            key,
            needs="s3:DeleteObjectVersion (and the version's retention must have ended)",
        ):
            self._s3.client.delete_object(
                Bucket=self._s3.name, Key=key, VersionId=version_id, **extra
            )


class _HashingSink:
    """A Sink that only hashes and counts (restartable, like HashingSpool)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("can only seek(0) to restart")
        return 0

    def truncate(self, size: int | None = None, /) -> int:
        self.hash, self.size = hashlib.sha256(), 0
        return 0
