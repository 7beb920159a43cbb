"""The S3 archive: deterministic keys, never-overwriting verified uploads, retention, sidecars.

:class:`ArchiveStore` receives a boto3 S3 client (it never builds one; see
:func:`make_s3_client`) and does four things with a spooled recording:

1. **Key** — :func:`object_key` builds ``{prefix}/{yyyy}/{mm}/{dd}/{uuid}.{ext}``
   from the ledger's fixed date, so every retry targets the same key, and
   nothing from the input can add or escape a path segment.
2. **Upload, never overwrite** — every write carries ``If-None-Match: *``.  Up to
   the multipart threshold one PUT with ``ChecksumSHA256``; above it a multipart
   upload with a SHA-256 per part, aborted on any failure.  The full SHA-256 goes
   into the object's metadata.  A 412 means the key exists: same SHA-256 and
   size is "already archived" (a crashed earlier attempt), anything else is an
   :class:`~tenios_io.exceptions.ArchiveConflict` — the object is never touched.
3. **Read back** — a HEAD with ``ChecksumMode=ENABLED`` must show the size, the
   SHA-256 (the full-object checksum for a single PUT, the metadata plus the
   composite of the part checksums for multipart), and the requested Object Lock
   mode, retain-until date and legal hold.  S3 itself verifies checksums on
   upload; moto (the local stand-in) does not, so this read-back is the guarantee.
4. **Retention** — Object Lock COMPLIANCE / GOVERNANCE until the recording's date
   plus the retention period when the bucket has Object Lock; otherwise the same
   facts as object tags (``retention-mode``, ``retain-until``), which are a record,
   not a protection, and a warning says so once per store.

``check()`` proves the bucket usable before a run: it exists, versioning and
Object Lock status, and a write and a read of one fixed probe object
``{prefix}/.tenios-archive-probe``.  The probe is written with
``If-None-Match: *``, so only the very first check creates it (one object, even
under a default retention rule); later checks get 412, which S3 answers only to
an authorised caller, and then HEAD it.

botocore's errors are translated in exactly one place, :func:`_translate`:
throttling, 5xx and network errors become ``StoreUnavailable`` (transient;
botocore's standard retry mode has already retried them); missing buckets,
refused permissions and other refusals become ``BucketNotUsable`` naming the
bucket and what to fix.  No message carries a credential.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import logging
import math
import re
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, Literal, NamedTuple, cast
from urllib.parse import quote, unquote, urlencode

import boto3
from botocore.config import Config
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

from tenios_io import __version__, crashpoints
from tenios_io.checksum import CHUNK_SIZE, Spooled
from tenios_io.exceptions import (
    ArchiveConflict,
    BucketNotUsable,
    StoreError,
    StoreUnavailable,
    VerificationFailed,
)
from tenios_io.sources import Sink

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, HeadObjectOutputTypeDef

    from tenios_io.config import Settings

__all__ = [
    "EXTENSIONS",
    "PROBE_NAME",
    "ArchiveStore",
    "ArchivedObject",
    "BucketStatus",
    "KeyParts",
    "ObjectInfo",
    "ObjectSummary",
    "RetentionMode",
    "make_s3_client",
    "object_key",
    "parse_object_key",
    "sidecar_key",
    "validate_prefix",
]

MiB: Final = 1024 * 1024
MIN_PART_SIZE: Final = 5 * MiB
"""S3's smallest part (all but the last)."""
MAX_PARTS: Final = 10_000
MAX_SINGLE_PUT: Final = 5 * 1024 * MiB
EXTENSIONS: Final = frozenset({"wav", "mp3", "bin"})
"""Recording extensions an object key may end in (what checksum.detect_content_type yields)."""
PROBE_NAME: Final = ".tenios-archive-probe"
_ARCHIVE_NEEDS: Final = (
    "s3:PutObject, s3:GetObject, s3:GetObjectVersion, s3:AbortMultipartUpload, and with Object "
    "Lock s3:PutObjectRetention, s3:PutObjectLegalHold, s3:GetObjectRetention, "
    "s3:GetObjectLegalHold (without it s3:PutObjectTagging, s3:GetObjectTagging)"
)
SIDECAR_SUFFIX: Final = ".json"
_PROBE_BODY: Final = b"tenios-archive write probe: safe to keep, safe to delete\n"
_MAX_SIDECAR_BYTES: Final = 1 * MiB

RetentionMode = Literal["compliance", "governance", "none"]
LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
SseMode = Literal["AES256", "aws:kms"]
_RETENTION_MODES: Final = ("compliance", "governance", "none")

_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9._-]+")
# S3 metadata must be US-ASCII: keep printable ASCII except '%' (so unquote is exact),
# percent-encode everything else — non-ASCII, spaces, control characters.
_META_SAFE: Final = "".join(c for c in string.printable[:94] if c != "%")


# -- keys -----------------------------------------------------------------------------------


def validate_prefix(prefix: str) -> str:
    """The prefix without surrounding slashes; ValueError unless it is plain segments.

    A segment holds only letters, digits, ``.``, ``_`` and ``-`` and is not made of
    dots alone (no ``.`` / ``..``); segments are joined by single slashes.  The
    empty prefix is allowed (keys then start with the year).
    """
    stripped = prefix.strip("/")
    if stripped == "":
        return ""
    for segment in stripped.split("/"):
        if not _SEGMENT_RE.fullmatch(segment) or set(segment) == {"."}:
            raise ValueError(
                f"invalid S3 key prefix {prefix!r}: segments may hold only letters, digits, "
                "'.', '_' and '-' (no empty, '.' or '..' segments)"
            )
    return stripped


def object_key(prefix: str, recording_uuid: str, day: date, extension: str) -> str:
    """``{prefix}/{yyyy}/{mm}/{dd}/{recording_uuid}.{ext}`` — ValueError on anything odd.

    ``recording_uuid`` must be a canonical hyphenated UUID (it is lower-cased);
    ``extension`` must be one of :data:`EXTENSIONS`; ``prefix`` must pass
    :func:`validate_prefix`.
    """
    clean_prefix = validate_prefix(prefix)
    if not isinstance(recording_uuid, str) or not _UUID_RE.fullmatch(recording_uuid):
        raise ValueError(
            f"recording_uuid {recording_uuid!r} is not a canonical UUID "
            "(8-4-4-4-12 hexadecimal digits)"
        )
    if extension not in EXTENSIONS:
        raise ValueError(f"extension {extension!r} is not one of {', '.join(sorted(EXTENSIONS))}")
    if not isinstance(day, date):
        raise ValueError(f"day must be a date, not {type(day).__name__}")
    path = f"{day.year:04d}/{day.month:02d}/{day.day:02d}/{recording_uuid.lower()}.{extension}"
    return f"{clean_prefix}/{path}" if clean_prefix else path


def sidecar_key(key: str) -> str:
    """The custody sidecar's key: the object key plus ``.json``."""
    return key + SIDECAR_SUFFIX


class KeyParts(NamedTuple):
    """What an object key says: the recording, its date and its extension."""

    recording_uuid: str
    day: date
    extension: str


_KEY_TAIL_RE: Final = re.compile(
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<uuid>" + _UUID_RE.pattern + r")\.(?P<ext>\w+)"
)


def parse_object_key(prefix: str, key: str) -> KeyParts | None:
    """The inverse of :func:`object_key`; None for any other key (sidecars, the probe, strays)."""
    clean_prefix = validate_prefix(prefix)
    head = f"{clean_prefix}/" if clean_prefix else ""
    if not key.startswith(head):
        return None
    match = _KEY_TAIL_RE.fullmatch(key[len(head) :])
    if match is None or match["ext"] not in EXTENSIONS or match["uuid"] != match["uuid"].lower():
        return None
    try:
        day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None
    return KeyParts(match["uuid"], day, match["ext"])


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketStatus:
    """What :meth:`ArchiveStore.check` found; ``warnings`` say what to improve."""

    bucket: str
    versioning: str
    """``Enabled``, ``Suspended`` or ``Disabled`` (never enabled)."""
    object_lock: bool
    default_retention: str | None
    """The bucket's default Object Lock rule, e.g. ``GOVERNANCE 30 days``, if any."""
    probe_key: str
    retention_mode: RetentionMode
    """The retention this store was configured to apply."""
    warnings: tuple[str, ...] = ()

    @property
    def retention_enforced(self) -> bool:
        """Whether archived objects get Object Lock (not just tags)."""
        return self.object_lock and self.retention_mode != "none"


@dataclass(frozen=True)
class ArchivedObject:
    """A recording that is in the bucket and verified by read-back."""

    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int
    content_type: str
    retention_mode: RetentionMode
    retain_until: datetime | None
    """UTC; None when no retention applies."""
    retention_enforced: bool
    """True: Object Lock protects the object; False: retention is only recorded as tags."""
    already_archived: bool
    """True when an earlier attempt had already put these exact bytes there."""
    legal_hold: bool = False
    recording_uuid: str | None = None
    call_uuid: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ObjectInfo:
    """One object version as HEAD (and optionally the tagging API) sees it."""

    key: str
    version_id: str | None
    size: int
    sha256: str | None
    """Hex: from the full-object checksum when S3 has one, else from our metadata."""
    checksum_sha256: str | None
    """The raw ``x-amz-checksum-sha256`` (base64; ``…-N`` for a multipart composite)."""
    content_type: str | None
    last_modified: datetime | None
    lock_mode: Literal["compliance", "governance"] | None
    retain_until: datetime | None
    legal_hold: bool
    metadata: dict[str, str] = field(default_factory=dict)
    """User metadata, percent-decoded."""
    tags: dict[str, str] | None = None
    """Only when asked for (one more request)."""


@dataclass(frozen=True)
class ObjectSummary:
    """One entry of a listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None


# -- the client factory ---------------------------------------------------------------------


def make_s3_client(
    max_attempts: int = 10,
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
) -> S3Client:
    """An S3 client from boto3's standard credential chain with standard-mode retries.

    ``max_attempts`` counts every attempt, the first included (botocore's
    ``total_max_attempts``); standard mode backs off exponentially with jitter
    and retries throttling (503 SlowDown), 5xx and connection errors.

    Credentials, region and endpoint come from boto3 itself (environment,
    ``AWS_PROFILE``, instance/task roles, ``AWS_ENDPOINT_URL_S3``); ``endpoint_url``
    and ``session`` exist for tests and tools that must pin them.
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=120,
        tcp_keepalive=True,
    )
    return (session or boto3.session.Session()).client(
        "s3", endpoint_url=endpoint_url, config=config
    )


# -- the store ------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Retention:
    """How one upload is protected: lock headers, legal hold header, or tags."""

    mode: RetentionMode
    retain_until: datetime | None
    lock_mode: LockMode | None  # set when Object Lock headers are sent
    legal_hold: bool
    legal_hold_header: bool
    tags: dict[str, str]


@dataclass(frozen=True)
class _Put:
    """What an upload sent, for the read-back to compare against."""

    version_id: str | None
    checksum: str
    """Base64 SHA-256 of the body, or of the concatenated part digests for multipart."""
    parts: int
    """0 for a single PUT."""


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
        if retention_mode not in _RETENTION_MODES:
            raise ValueError(f"retention_mode must be one of {_RETENTION_MODES}")
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
        self._client = s3_client
        self._bucket = bucket
        self._prefix = validate_prefix(prefix)
        self._retention_mode: RetentionMode = retention_mode
        self._retention_days = retention_days
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size
        self._sse = sse
        self._kms_key_id = kms_key_id
        self._tool_version = tool_version
        self._log = logger or logging.getLogger(__name__)
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
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    def key_for(self, recording_uuid: str, day: date, extension: str) -> str:
        """This store's :func:`object_key`."""
        return object_key(self._prefix, recording_uuid, day, extension)

    # -- bucket --------------------------------------------------------------------------

    def check(self) -> BucketStatus:
        """Prove the bucket usable (exists, reachable, writable, readable) and describe it.

        Raises :class:`BucketNotUsable` naming the bucket and what to fix;
        :class:`StoreUnavailable` if S3 cannot be reached.
        """
        with self._translated("HeadBucket", needs="s3:ListBucket on the bucket"):
            try:
                self._client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
                raise BucketNotUsable(
                    f"bucket {self._bucket!r} does not exist (or is in another partition): "
                    "create it, or fix TENIOS_S3_BUCKET / AWS_ENDPOINT_URL_S3"
                ) from exc
        with self._translated("GetBucketVersioning", needs="s3:GetBucketVersioning"):
            versioning = self._client.get_bucket_versioning(Bucket=self._bucket).get(
                "Status", "Disabled"
            )
        lock, default_retention = self._read_lock_configuration()
        probe = f"{self._prefix}/{PROBE_NAME}" if self._prefix else PROBE_NAME
        with self._translated("PutObject", probe, needs="s3:PutObject on the prefix"):
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=probe,
                    Body=_PROBE_BODY,
                    ContentType="text/plain",
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(hashlib.sha256(_PROBE_BODY).digest()),
                    IfNoneMatch="*",
                    **self._sse_args(),
                )
            except ClientError as exc:
                if not _is_precondition_failed(exc):
                    raise
        with self._translated("HeadObject", probe, needs="s3:GetObject on the prefix"):
            self._client.head_object(Bucket=self._bucket, Key=probe)

        warnings = []
        if versioning != "Enabled":
            warnings.append(
                f"versioning is {versioning.lower()} on {self._bucket!r}: a delete or an "
                "overwrite by another writer would destroy the only copy; enable versioning"
            )
        if not lock and self._retention_mode != "none":
            warnings.append(
                f"bucket {self._bucket!r} has no Object Lock: retention "
                f"({self._retention_mode}) is recorded as object tags but not enforced; "
                "archive into a bucket created with Object Lock enabled"
            )
        return BucketStatus(
            bucket=self._bucket,
            versioning=versioning,
            object_lock=lock,
            default_retention=default_retention,
            probe_key=probe,
            retention_mode=self._retention_mode,
            warnings=tuple(warnings),
        )

    def _read_lock_configuration(self) -> tuple[bool, str | None]:
        with self._translated(
            "GetObjectLockConfiguration", needs="s3:GetBucketObjectLockConfiguration"
        ):
            try:
                conf = self._client.get_object_lock_configuration(Bucket=self._bucket)
            except ClientError as exc:
                if _code(exc) != "ObjectLockConfigurationNotFoundError":
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

    def _lock_enabled(self) -> bool:
        if self._object_lock is None:
            self._read_lock_configuration()
        assert self._object_lock is not None
        return self._object_lock

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
    ) -> ArchivedObject:
        """Upload ``spooled`` under its key, never overwriting, and verify it by read-back.

        ``retention_days`` overrides the store's policy for this recording.
        Raises ArchiveConflict (other bytes under the key), VerificationFailed
        (read-back differs), BucketNotUsable, or StoreUnavailable (try again).
        """
        key = self.key_for(recording_uuid, key_date, spooled.extension)
        recording_uuid = recording_uuid.lower()  # canonical, as in the key
        retention = self._plan_retention(key, key_date, retention_days, legal_hold)
        metadata = self._metadata(
            sha256=spooled.sha256, recording_uuid=recording_uuid, call_uuid=call_uuid, source=source
        )
        with self._translated("archive", key, recording_uuid=recording_uuid, needs=_ARCHIVE_NEEDS):
            if spooled.size > self._multipart_threshold:
                # A re-run after a crash should not push gigabytes only to learn of a 412.
                existing = self._head(key, checksum=True)
                put = (
                    None
                    if existing
                    else self._put_multipart(key, spooled, metadata, retention, recording_uuid)
                )
            else:
                existing, put = None, self._put_single(key, spooled, metadata, retention)
            if put is None:
                return self._already_archived(
                    key, spooled, retention, recording_uuid, call_uuid, source, existing
                )
            head = self._read_back(key, put, retention)
            self._verify(key, head, spooled.sha256, spooled.size, put, retention, recording_uuid)
        self._log.info(
            "archived %s (%d bytes) to s3://%s/%s version %s",
            recording_uuid,
            spooled.size,
            self._bucket,
            key,
            _version_of(head),
        )
        return ArchivedObject(
            bucket=self._bucket,
            key=key,
            version_id=_version_of(head) or put.version_id,
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
    ) -> _Retention:
        days = self._retention_days if retention_days is None else retention_days
        if days < 0:
            raise ValueError("retention_days must be >= 0")
        lock = self._lock_enabled() if (self._retention_mode != "none" or legal_hold) else False
        tags: dict[str, str] = {}
        if legal_hold and not lock:
            tags["legal-hold"] = "on"
            self._warn_unenforced()
        if self._retention_mode == "none":
            return _Retention("none", None, None, legal_hold, legal_hold and lock, tags)
        retain_until = datetime.combine(key_date, time(0), tzinfo=UTC) + timedelta(days=days)
        lock_mode = _lock_mode(self._retention_mode)
        if not lock:
            self._warn_unenforced()
            lock_mode = None
        elif retain_until <= datetime.now(UTC):
            # S3 refuses a retain-until date in the past: the recording's retention is over.
            self._log.info(
                "retention of s3://%s/%s ended %s; archiving it without an Object Lock period",
                self._bucket,
                key,
                retain_until.date(),
            )
            lock_mode = None
        if lock_mode is None:
            tags["retention-mode"] = self._retention_mode
            tags["retain-until"] = _iso(retain_until)
        return _Retention(
            self._retention_mode, retain_until, lock_mode, legal_hold, legal_hold and lock, tags
        )

    def _warn_unenforced(self) -> None:
        if not self._warned_unenforced:
            self._warned_unenforced = True
            self._log.warning(
                "bucket %s has no Object Lock: retention and legal holds are recorded as object "
                "tags but NOT enforced (anyone allowed to delete can delete); archive into a "
                "bucket created with Object Lock enabled",
                self._bucket,
            )

    def _metadata(self, **values: str | None) -> dict[str, str]:
        meta = {name.replace("_", "-"): value for name, value in values.items() if value}
        meta["tool-version"] = self._tool_version
        return {name: quote(value, safe=_META_SAFE) for name, value in meta.items()}

    def _sse_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self._sse is not None:
            args["ServerSideEncryption"] = self._sse
        if self._kms_key_id is not None:
            args["SSEKMSKeyId"] = self._kms_key_id
        return args

    def _put_args(
        self, key: str, content_type: str, metadata: dict[str, str], retention: _Retention
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ContentType": content_type,
            "Metadata": metadata,
            **self._sse_args(),
        }
        if retention.lock_mode is not None:
            args["ObjectLockMode"] = retention.lock_mode
            args["ObjectLockRetainUntilDate"] = retention.retain_until
        if retention.legal_hold_header:
            args["ObjectLockLegalHoldStatus"] = "ON"
        if retention.tags:
            args["Tagging"] = urlencode(retention.tags)
        return args

    def _put_single(
        self, key: str, spooled: Spooled, metadata: dict[str, str], retention: _Retention
    ) -> _Put | None:
        checksum = _b64(bytes.fromhex(spooled.sha256))
        args = self._put_args(key, spooled.content_type, metadata, retention)
        with spooled.path.open("rb") as body:  # botocore streams it from disk
            try:
                response = self._client.put_object(
                    Body=body,
                    ContentLength=spooled.size,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                    IfNoneMatch="*",
                    **args,
                )
            except ClientError as exc:
                if _is_precondition_failed(exc):
                    return None
                raise
        return _Put(_version_of(response), checksum, parts=0)

    def _part_size_for(self, size: int) -> int:
        # S3 allows 10,000 parts: grow the part (in whole MiB) for very large files.
        needed = math.ceil(size / MAX_PARTS)
        return max(self._part_size, math.ceil(needed / MiB) * MiB)

    def _put_multipart(
        self,
        key: str,
        spooled: Spooled,
        metadata: dict[str, str],
        retention: _Retention,
        recording_uuid: str,
    ) -> _Put | None:
        self._abort_stale_uploads(key, recording_uuid)
        args = self._put_args(key, spooled.content_type, metadata, retention)
        upload_id = self._client.create_multipart_upload(ChecksumAlgorithm="SHA256", **args)[
            "UploadId"
        ]
        try:
            parts, composite = self._upload_parts(key, upload_id, spooled)
            try:
                response = self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if not _is_precondition_failed(exc):
                    raise
                self._abort(key, upload_id, recording_uuid)
                return None
        except BaseException:
            self._abort(key, upload_id, recording_uuid)
            raise
        return _Put(_version_of(response), composite, parts=len(parts))

    def _upload_parts(
        self, key: str, upload_id: str, spooled: Spooled
    ) -> tuple[list[CompletedPartTypeDef], str]:
        """Upload the spool file part by part, streamed from disk: memory stays ~1 MiB.

        Each part is read twice — once here to hash it (1 MiB at a time), once by
        botocore to send it — and S3 checks what it receives against that hash.
        """
        part_size = self._part_size_for(spooled.size)
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
                checksum = _b64(part.digest())
                response = self._client.upload_part(
                    Bucket=self._bucket,
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
        return parts, _b64(hashlib.sha256(bytes(digests)).digest())

    def _abort_stale_uploads(self, key: str, recording_uuid: str) -> None:
        """Abort unfinished multipart uploads of exactly ``key``: a worker that was killed
        mid-upload leaves them.  Safe, because only the lease holder of the recording
        writes its (fixed) key, and that is us now."""
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._bucket, Prefix=key
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload.get("Key") == key and "UploadId" in upload:
                    self._log.info("aborting a stale multipart upload of %s", key)
                    self._abort(key, upload["UploadId"], recording_uuid)

    def _abort(self, key: str, upload_id: str, recording_uuid: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) == "NoSuchUpload":
                return
            self._log.warning(
                "could not abort multipart upload %s of s3://%s/%s (%s): its parts stay until "
                "a lifecycle rule AbortIncompleteMultipartUpload removes them",
                upload_id,
                self._bucket,
                key,
                type(exc).__name__,
            )

    def _read_back(self, key: str, put: _Put, retention: _Retention) -> HeadObjectOutputTypeDef:
        head = self._head(key, put.version_id, checksum=True)
        if head is None:
            raise VerificationFailed(
                f"read-back of s3://{self._bucket}/{key} found nothing right after the upload",
                s3_key=key,
            )
        if put.parts and self._apply_missing_lock(key, head, retention):
            head = self._head(key, put.version_id, checksum=True)
            if head is None:
                raise VerificationFailed(f"s3://{self._bucket}/{key} vanished", s3_key=key)
        return head

    def _apply_missing_lock(
        self, key: str, head: HeadObjectOutputTypeDef, retention: _Retention
    ) -> bool:
        """Set the retention / legal hold ``retention`` asks for where ``head`` lacks them.

        Needed after a multipart upload on some S3-compatible stores (moto among
        them) that drop CreateMultipartUpload's Object Lock headers, and after a
        crash between an upload and this repair.  Applied to exactly the version
        in ``head``; returns whether anything was changed.
        """
        version = _version_arg(_version_of(head))
        changed = False
        if retention.lock_mode and retention.retain_until and not head.get("ObjectLockMode"):
            self._client.put_object_retention(
                Bucket=self._bucket,
                Key=key,
                Retention={"Mode": retention.lock_mode, "RetainUntilDate": retention.retain_until},
                **version,
            )
            changed = True
        if retention.legal_hold_header and head.get("ObjectLockLegalHoldStatus") != "ON":
            self._client.put_object_legal_hold(
                Bucket=self._bucket, Key=key, LegalHold={"Status": "ON"}, **version
            )
            changed = True
        return changed

    def _verify(
        self,
        key: str,
        head: HeadObjectOutputTypeDef,
        sha256: str,
        size: int,
        put: _Put,
        retention: _Retention,
        recording_uuid: str | None,
    ) -> None:
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
                problems.append(
                    f"composite ChecksumSHA256 {checksum} != {put.checksum}-{put.parts}"
                )
        if retention.lock_mode is not None:
            if head.get("ObjectLockMode") != retention.lock_mode:
                problems.append(
                    f"Object Lock mode {head.get('ObjectLockMode') or '(none)'} != "
                    f"{retention.lock_mode}"
                )
            found_until = head.get("ObjectLockRetainUntilDate")
            if not _same_instant(found_until, retention.retain_until):
                problems.append(
                    f"retain-until {_iso(found_until) if found_until else '(none)'} != "
                    f"{_iso(retention.retain_until) if retention.retain_until else '(none)'}"
                )
        if retention.legal_hold_header and head.get("ObjectLockLegalHoldStatus") != "ON":
            problems.append(f"legal hold {head.get('ObjectLockLegalHoldStatus') or '(none)'} != ON")
        if self._sse is not None and head.get("ServerSideEncryption") not in (None, self._sse):
            problems.append(f"encryption {head.get('ServerSideEncryption')} != {self._sse}")
        if problems:
            raise VerificationFailed(
                f"read-back of s3://{self._bucket}/{key} (version {head.get('VersionId')}) does "
                f"not match what was uploaded: {'; '.join(problems)}.  If the lock fields are "
                "missing, the archiver may lack s3:GetObjectRetention / s3:GetObjectLegalHold.",
                recording_uuid=recording_uuid,
                s3_key=key,
            )

    def _already_archived(
        self,
        key: str,
        spooled: Spooled,
        retention: _Retention,
        recording_uuid: str,
        call_uuid: str | None,
        source: str,
        head: HeadObjectOutputTypeDef | None = None,
    ) -> ArchivedObject:
        """The key exists: same bytes → report it (finishing its retention); else conflict."""
        head = head or self._head(key, checksum=True)
        if head is None:
            raise StoreUnavailable(
                f"s3://{self._bucket}/{key} refused the upload as existing, but HEAD finds "
                "nothing (deleted meanwhile?); try again",
                recording_uuid=recording_uuid,
                s3_key=key,
            )
        info = self._object_info(key, head)
        if info.sha256 != spooled.sha256 or info.size != spooled.size:
            raise ArchiveConflict(
                f"s3://{self._bucket}/{key} already holds other bytes: the bucket has SHA-256 "
                f"{info.sha256 or '(unknown)'} ({info.size} bytes), this attempt has "
                f"{spooled.sha256} ({spooled.size} bytes).  Nothing was overwritten; compare "
                "the two and resolve by hand.",
                recording_uuid=recording_uuid,
                s3_key=key,
                expected_sha256=spooled.sha256,
                found_sha256=info.sha256,
            )
        # Same bytes.  If the crash came before the lock was applied, apply it now.
        if self._apply_missing_lock(key, head, retention):
            head = self._head(key, info.version_id, checksum=True)
            assert head is not None
            info = self._object_info(key, head)
        legal_hold = info.legal_hold
        if info.lock_mode is not None:
            mode: RetentionMode = info.lock_mode
            retain_until, enforced = info.retain_until, True
        else:
            tags = self._tags(key, info.version_id)
            mode = _retention_mode(tags.get("retention-mode"))
            retain_until, enforced = _parse_iso(tags.get("retain-until")), False
            legal_hold = legal_hold or tags.get("legal-hold") == "on"
        if retention.legal_hold and not legal_hold:  # asked for now, on a bucket without a lock
            self.set_legal_hold(key, info.version_id, True)
            legal_hold = True
        self._log.info("%s was already archived at s3://%s/%s", recording_uuid, self._bucket, key)
        return ArchivedObject(
            bucket=self._bucket,
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
        version = _version_arg(version_id)
        with self._translated("PutObjectLegalHold", key, needs="s3:PutObjectLegalHold"):
            if self._lock_enabled():
                self._client.put_object_legal_hold(
                    Bucket=self._bucket, Key=key, LegalHold={"Status": status}, **version
                )
                head = self._head(key, version_id)
                found = head.get("ObjectLockLegalHoldStatus", "OFF") if head else None
                if found != status:
                    raise VerificationFailed(
                        f"legal hold of s3://{self._bucket}/{key} reads {found or '(missing)'} "
                        f"after setting {status}",
                        s3_key=key,
                    )
                return
            self._warn_unenforced()
            tags = self._tags(key, version_id)
            if on:
                tags["legal-hold"] = "on"
            else:
                tags.pop("legal-hold", None)
            self._client.put_object_tagging(
                Bucket=self._bucket,
                Key=key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
                **version,
            )

    # -- custody sidecar ------------------------------------------------------------------

    def put_sidecar(self, obj: ArchivedObject, fields: Mapping[str, Any]) -> str:
        """Write ``{key}.json`` describing ``obj``; return its key.

        ``fields`` must carry ``custody_event_hash`` and ``fetched_at`` (and may
        carry ``archived_at``, default now, and more); they may not contradict
        ``obj``.  Written with ``If-None-Match: *`` and the object's retention.  If a
        sidecar is already there describing the same SHA-256 and size (a crashed
        earlier attempt wrote it) it is accepted; otherwise ArchiveConflict.
        """
        key = sidecar_key(obj.key)
        document = self._sidecar_document(obj, fields)
        body = _canonical_json(document)
        sha256 = hashlib.sha256(body).hexdigest()
        retention = self._retention_of(obj)
        checksum = _b64(bytes.fromhex(sha256))
        args = self._put_args(
            key,
            "application/json",
            self._metadata(sha256=sha256, recording_uuid=obj.recording_uuid),
            retention,
        )
        with self._translated(
            "PutObject", key, recording_uuid=obj.recording_uuid, needs=_ARCHIVE_NEEDS
        ):
            try:
                response = self._client.put_object(
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                    IfNoneMatch="*",
                    **args,
                )
            except ClientError as exc:
                if not _is_precondition_failed(exc):
                    raise
                return self._accept_existing_sidecar(obj, key)
            put = _Put(_version_of(response), checksum, parts=0)
            head = self._read_back(key, put, retention)
            self._verify(key, head, sha256, len(body), put, retention, obj.recording_uuid)
        return key

    def _retention_of(self, obj: ArchivedObject) -> _Retention:
        """The object's retention, to give its sidecar the same."""
        until = obj.retain_until
        lock_mode = _lock_mode(obj.retention_mode) if obj.retention_enforced else None
        if lock_mode is not None and (until is None or until <= datetime.now(UTC)):
            lock_mode = None  # S3 refuses a past retain-until date
        tags: dict[str, str] = {}
        if lock_mode is None and obj.retention_mode != "none" and until is not None:
            tags = {"retention-mode": obj.retention_mode, "retain-until": _iso(until)}
        hold_header = obj.legal_hold and self._lock_enabled()
        if obj.legal_hold and not hold_header:
            tags["legal-hold"] = "on"
        return _Retention(obj.retention_mode, until, lock_mode, obj.legal_hold, hold_header, tags)

    def _sidecar_document(self, obj: ArchivedObject, fields: Mapping[str, Any]) -> dict[str, Any]:
        missing = {"custody_event_hash", "fetched_at"} - set(fields)
        if missing:
            raise ValueError(f"sidecar fields lack {', '.join(sorted(missing))}")
        own: dict[str, Any] = {
            "recording_uuid": obj.recording_uuid,
            "call_uuid": obj.call_uuid,
            "sha256": obj.sha256,
            "size": obj.size,
            "content_type": obj.content_type,
            "source": obj.source,
            "bucket": obj.bucket,
            "key": obj.key,
            "version_id": obj.version_id,
            "retention_mode": obj.retention_mode,
            "retain_until": obj.retain_until,
            "retention_enforced": obj.retention_enforced,
            "legal_hold": obj.legal_hold,
            "tool_version": self._tool_version,
        }
        for name, value in fields.items():
            if name in own and not _same_value(name, value, own[name]):
                raise ValueError(
                    f"sidecar field {name}={value!r} contradicts the archived object "
                    f"({own[name]!r})"
                )
        return {"archived_at": datetime.now(UTC), **fields, **own}

    def _accept_existing_sidecar(self, obj: ArchivedObject, key: str) -> str:
        existing = self._get_json(key, obj.recording_uuid)
        found_sha = existing.get("sha256") if isinstance(existing, dict) else None
        found_size = existing.get("size") if isinstance(existing, dict) else None
        if found_sha == obj.sha256 and found_size == obj.size:
            self._log.info("sidecar s3://%s/%s was already written", self._bucket, key)
            return key
        raise ArchiveConflict(
            f"sidecar s3://{self._bucket}/{key} already exists and describes other bytes: "
            f"SHA-256 {found_sha or '(unreadable)'} ({found_size} bytes) where the object has "
            f"{obj.sha256} ({obj.size} bytes).  Nothing was overwritten.",
            recording_uuid=obj.recording_uuid,
            s3_key=key,
            expected_sha256=obj.sha256,
            found_sha256=found_sha if isinstance(found_sha, str) else None,
        )

    def read_sidecar(self, key: str) -> dict[str, Any] | None:
        """The sidecar of the object at ``key`` as a dict, or None if there is none."""
        with self._translated("GetObject", sidecar_key(key), needs="s3:GetObject"):
            try:
                document = self._get_json(sidecar_key(key), None)
            except ClientError as exc:
                if _status(exc) == 404:
                    return None
                raise
        if not isinstance(document, dict):
            raise VerificationFailed(
                f"sidecar s3://{self._bucket}/{sidecar_key(key)} is not a JSON object",
                s3_key=sidecar_key(key),
            )
        return document

    def _get_json(self, key: str, recording_uuid: str | None) -> Any:
        response = self._client.get_object(Bucket=self._bucket, Key=key)
        body = response["Body"]
        try:
            raw = body.read(_MAX_SIDECAR_BYTES + 1)
        finally:
            body.close()
        if len(raw) > _MAX_SIDECAR_BYTES:
            raise VerificationFailed(
                f"s3://{self._bucket}/{key} is larger than a sidecar can be",
                recording_uuid=recording_uuid,
                s3_key=key,
            )
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise VerificationFailed(
                f"s3://{self._bucket}/{key} is not valid JSON ({exc})",
                recording_uuid=recording_uuid,
                s3_key=key,
            ) from exc

    # -- audit helpers --------------------------------------------------------------------

    def head(
        self, key: str, version_id: str | None = None, *, with_tags: bool = False
    ) -> ObjectInfo | None:
        """What S3 says about an object (version); None if it does not exist."""
        with self._translated("HeadObject", key, needs="s3:GetObject / s3:GetObjectVersion"):
            head = self._head(key, version_id, checksum=True)
            if head is None:
                return None
            info = self._object_info(key, head)
            if with_tags:
                tags = self._tags(key, info.version_id)
                info = dataclasses.replace(info, tags=tags)
        return info

    def iter_objects(
        self, prefix: str | None = None, *, page_size: int = 1000
    ) -> Iterator[ObjectSummary]:
        """Every object under ``prefix`` (default: this store's prefix), page by page."""
        if prefix is None:
            prefix = f"{self._prefix}/" if self._prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self._bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        with self._translated("ListObjectsV2", prefix, needs="s3:ListBucket"):
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
        version = _version_arg(version_id)
        written = 0
        with self._translated("GetObject", key, needs="s3:GetObject / s3:GetObjectVersion"):
            try:
                response = self._client.get_object(
                    Bucket=self._bucket, Key=key, ChecksumMode="ENABLED", **version
                )
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
                raise VerificationFailed(
                    f"s3://{self._bucket}/{key} (version {version_id or 'latest'}) does not exist",
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
        with self._translated(
            "DeleteObject",
            key,
            needs="s3:DeleteObjectVersion (and the version's retention must have ended)",
        ):
            self._client.delete_object(Bucket=self._bucket, Key=key, VersionId=version_id, **extra)

    # -- small S3 helpers -----------------------------------------------------------------

    def _head(
        self, key: str, version_id: str | None = None, *, checksum: bool = True
    ) -> HeadObjectOutputTypeDef | None:
        args: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        if checksum:
            args["ChecksumMode"] = "ENABLED"
        try:
            return self._client.head_object(**args)
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise

    def _tags(self, key: str, version_id: str | None) -> dict[str, str]:
        version = _version_arg(version_id)
        tag_set = self._client.get_object_tagging(Bucket=self._bucket, Key=key, **version)
        return {tag["Key"]: tag["Value"] for tag in tag_set.get("TagSet", [])}

    def _object_info(self, key: str, head: HeadObjectOutputTypeDef) -> ObjectInfo:
        metadata = {name: unquote(value) for name, value in head.get("Metadata", {}).items()}
        checksum = head.get("ChecksumSHA256")
        sha256 = metadata.get("sha256") or None
        if checksum and not _is_composite(head):
            try:
                # A full-object checksum is S3's own word on the bytes: it wins over ours.
                sha256 = base64.b64decode(checksum, validate=True).hex()
            except ValueError:
                sha256 = None
        lock_mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        return ObjectInfo(
            key=key,
            version_id=_version_of(head),
            size=head.get("ContentLength", 0),
            sha256=sha256,
            checksum_sha256=checksum,
            content_type=head.get("ContentType"),
            last_modified=head.get("LastModified"),
            lock_mode="compliance"
            if lock_mode == "COMPLIANCE"
            else "governance"
            if lock_mode == "GOVERNANCE"
            else None,
            retain_until=until.astimezone(UTC) if until else None,
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
            metadata=metadata,
        )

    @contextmanager
    def _translated(
        self,
        action: str,
        key: str | None = None,
        *,
        recording_uuid: str | None = None,
        needs: str | None = None,
    ) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            translated = _translate(
                exc,
                bucket=self._bucket,
                action=action,
                key=key,
                recording_uuid=recording_uuid,
                needs=needs,
            )
            if translated is None:
                raise
            raise translated from exc


# -- botocore errors → ours, in one place ---------------------------------------------------

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
        code, status = _code(exc), _status(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        detail = f"{code or status}: {message}" if message else f"{code or status}"
        if code in _THROTTLING_CODES or status == 429 or (status is not None and status >= 500):
            return StoreUnavailable(
                f"S3 is throttling or failing ({detail}) on {action} {where}, even after "
                "retries; try again later",
                **ids,
            )
        if code == "NoSuchBucket":
            return BucketNotUsable(
                f"bucket {bucket!r} does not exist: create it, or fix TENIOS_S3_BUCKET / "
                "AWS_ENDPOINT_URL_S3",
                **ids,
            )
        if code.startswith("KMS") or "KMS" in message:
            return BucketNotUsable(
                f"S3 could not use the KMS key for {action} {where} ({detail}): check "
                "TENIOS_S3_KMS_KEY_ID and that the archiver may kms:GenerateDataKey and "
                "kms:Decrypt with it",
                **ids,
            )
        if code in _DENIED_CODES or status == 403:
            hint = f"; the archiver needs {needs}" if needs else ""
            return BucketNotUsable(
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
        return BucketNotUsable(
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


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _is_precondition_failed(exc: ClientError) -> bool:
    return _status(exc) == 412 or _code(exc) == "PreconditionFailed"


# -- small pure helpers ---------------------------------------------------------------------


def _is_composite(head: HeadObjectOutputTypeDef) -> bool:
    """Whether the object's checksum covers its parts' checksums rather than its bytes.

    S3 marks it (``ChecksumType: COMPOSITE``, a ``-N`` suffix); some stand-ins do not,
    but a multipart upload's ETag always ends in ``-N``.
    """
    checksum = head.get("ChecksumSHA256", "")
    return (
        "-" in checksum
        or head.get("ChecksumType") == "COMPOSITE"
        or re.search(r"-\d+\"?$", head.get("ETag", "")) is not None
    )


def _lock_mode(mode: RetentionMode) -> LockMode | None:
    if mode == "compliance":
        return "COMPLIANCE"
    if mode == "governance":
        return "GOVERNANCE"
    return None


def _version_of(response: Mapping[str, Any]) -> str | None:
    """The response's version id; None for an unversioned object (S3 may say "null")."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def _version_arg(version_id: str | None) -> dict[str, Any]:
    return {"VersionId": version_id} if version_id else {}


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _same_instant(found: datetime | None, expected: datetime | None) -> bool:
    if found is None or expected is None:
        return found is expected
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return abs((found - expected).total_seconds()) < 1


def _retention_mode(value: str | None) -> RetentionMode:
    if value == "compliance":
        return "compliance"
    if value == "governance":
        return "governance"
    return "none"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give sidecar times in UTC")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _same_value(name: str, given: Any, own: Any) -> bool:
    """Whether a caller's sidecar field agrees with the store's (UUIDs in any case)."""
    given, own = _jsonable(given), _jsonable(own)
    if name.endswith("_uuid") and isinstance(given, str) and isinstance(own, str):
        return given.lower() == own.lower()
    return bool(given == own)


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return _jsonable(value)
    raise TypeError(f"cannot put {type(value).__name__} into a sidecar")


def _canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, ASCII only: the same dict, the same bytes."""
    return json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=_json_default,
    ).encode("ascii")
