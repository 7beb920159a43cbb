"""Every error tenios-archive raises, in one tree.

Each error is either *transient* (retrying the same thing later may succeed) or
*terminal* (retrying will not help until a person changes something).  Retry
decisions ask exactly that question — ``isinstance(exc, Transient)`` — and
nothing else.  Vendor errors (httpx, botocore, paramiko, SQLAlchemy) are
translated once, at the boundary that meets them, with ``raise ... from exc``.

    TeniosArchiveError
    ├── ConfigError                      [terminal]  a setting is missing or invalid
    │   ├── BucketOfAnotherLedger        [terminal]  the bucket prefix keeps another
    │   │                                            ledger's custody history
    │   └── BucketForgotLedger           [terminal]  the bucket prefix lacks what this ledger
    │                                                archived there (lost, another bucket,
    │                                                another TENIOS_S3_PREFIX)
    ├── LedgerError
    │   ├── UnknownRecording             [terminal]  recording_uuid not in the ledger
    │   ├── IllegalTransition            [terminal]  state machine refused a move
    │   ├── StaleLease                   [terminal]  lease token no longer current (fenced)
    │   ├── ImportFileError              [terminal]  bad line/column in an import file
    │   ├── ChainBroken                  [terminal]  custody hash chain does not verify
    │   ├── SchemaNotCurrent             [terminal]  database not migrated to head
    │   └── LedgerUnavailable            [transient] database connection lost / busy
    ├── ApiError
    │   ├── InvalidRequest               [terminal]  400, carries ``fields``
    │   │   └── WrongApiUrl              [terminal]  a redirect, or 404 "unknown endpoint":
    │   │                                            fix TENIOS_API_URL
    │   ├── AccessDenied                 [terminal]  401/403, or BAD_CREDENTIALS on a 400
    │   ├── RecordingNotFound            [terminal*] 404 on retrieve (*the pipeline reads
    │   │                                            it as "not ready yet" within the grace)
    │   └── ApiUnavailable               [transient] 429, 5xx, connect/read errors
    │       ├── TruncatedBody            [transient] fewer bytes than Content-Length
    │       └── ApiUnreachable           [transient] no connection at all (refused, DNS,
    │                                                TLS): run-wide once the client gives up
    ├── StoreError
    │   ├── StoreUnavailable             [transient] throttling, 5xx, network
    │   ├── BucketNotUsable              [terminal]  S3 refused this request
    │   │   └── StoreAccessDenied        [terminal]  no such bucket, access denied, expired or
    │   │                                            missing credentials, KMS: run-wide
    │   ├── ArchiveConflict              [terminal]  the key holds other bytes
    │   ├── RetentionNotApplicable       [terminal]  a lock mode, but the recording's
    │   │                                            retain-until is already past: never
    │   │                                            archived without its lock
    │   └── VerificationFailed           [terminal]  read-back did not match what we sent
    ├── SourceError
    │   ├── SourceUnavailable            [transient] SFTP connection dropped, file changed
    │   ├── HostKeyError                 [terminal]  unknown or changed SFTP host key
    │   └── SourceFileMissing            [terminal]  the file is not (or no longer) there
    │       └── SourceOutsideDrop        [terminal]  the path lies outside the drop: never
    │                                                opened, moved or deleted
    ├── SpoolUnusable                    [transient] the local spool cannot be written (disk
    │                                                full, directory gone or read-only): run-wide
    └── RecordingInvalid                 [transient] not the whole recording: short of its
                                                     Content-Length, an incomplete container,
                                                     an error document on a 200 (recording/)
"""

from __future__ import annotations

from collections.abc import Sequence


class Transient:
    """Marker: the same operation may succeed if tried again later."""


class Terminal:
    """Marker: retrying will not help; a person has to act."""


class TeniosArchiveError(Exception):
    """Root of every error raised by tenios-archive.

    ``recording_uuid`` and ``s3_key`` are carried as attributes whenever known,
    so callers can record them without parsing messages.
    """

    def __init__(
        self,
        message: str,
        *,
        recording_uuid: str | None = None,
        s3_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.recording_uuid = recording_uuid
        self.s3_key = s3_key

    def __str__(self) -> str:
        return self.message


def is_transient(exc: BaseException) -> bool:
    """The one retry question: is ``exc`` worth trying again later?"""
    return isinstance(exc, Transient)


# -- configuration --------------------------------------------------------------------------


class ConfigError(TeniosArchiveError, Terminal):
    """A setting is missing or invalid; the message names the variable."""

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


class BucketOfAnotherLedger(ConfigError):
    """The bucket prefix holds another ledger's id or checkpoints: two ledgers must not
    share one (TENIOS_S3_BUCKET / TENIOS_S3_PREFIX or TENIOS_DATABASE_URL is wrong)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, variable="TENIOS_S3_PREFIX")


class BucketForgotLedger(ConfigError):
    """The bucket prefix does not hold what this ledger archived and published there (no
    ledger id and no checkpoint though recordings are archived, or checkpoints older than
    the ledger's newest), or the ledger's custody log lives under another prefix: S3 lost
    its data, TENIOS_S3_BUCKET names a new bucket, or TENIOS_S3_PREFIX changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, variable="TENIOS_S3_PREFIX")


# -- ledger ---------------------------------------------------------------------------------


class LedgerError(TeniosArchiveError):
    """Base for ledger problems."""


class UnknownRecording(LedgerError, Terminal):
    """The recording_uuid is not in the ledger."""


class IllegalTransition(LedgerError, Terminal):
    """The state machine does not allow this move."""

    def __init__(
        self, recording_uuid: str, from_state: str, to_state: str, *, hint: str | None = None
    ) -> None:
        message = f"recording {recording_uuid}: cannot go from {from_state!r} to {to_state!r}"
        super().__init__(
            f"{message} ({hint})" if hint else message,
            recording_uuid=recording_uuid,
        )
        self.from_state = from_state
        self.to_state = to_state


class StaleLease(LedgerError, Terminal):
    """The lease token is no longer the current one: another worker owns the row now."""


class ImportFileError(LedgerError, Terminal):
    """An import file has a bad value; nothing from the file was imported."""

    def __init__(self, message: str, *, line: int, column: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class ChainBroken(LedgerError, Terminal):
    """The custody hash chain does not verify; ``event_id`` is the first bad event."""

    def __init__(self, message: str, *, event_id: int | None) -> None:
        super().__init__(message)
        self.event_id = event_id


class LedgerUnavailable(LedgerError, Transient):
    """The database could not be reached or was busy; try again."""


class SchemaNotCurrent(LedgerError, Terminal):
    """The database is not migrated to the current schema (run `tenios-archive db upgrade`)."""


# -- TENIOS API -----------------------------------------------------------------------------


class ApiError(TeniosArchiveError):
    """Base for TENIOS record-call API problems."""


class InvalidRequest(ApiError, Terminal):
    """400: the API refused a field; ``fields`` names them."""

    def __init__(
        self, message: str, *, fields: Sequence[str] = (), recording_uuid: str | None = None
    ) -> None:
        super().__init__(message, recording_uuid=recording_uuid)
        self.fields = list(fields)


class WrongApiUrl(InvalidRequest):
    """TENIOS_API_URL does not point at the API: a redirect (``location`` names where
    to), or a 404 that says the endpoint is unknown rather than the recording."""

    def __init__(
        self, message: str, *, location: str | None = None, recording_uuid: str | None = None
    ) -> None:
        super().__init__(message, recording_uuid=recording_uuid)
        self.location = location


class AccessDenied(ApiError, Terminal):
    """401/403, or ``BAD_CREDENTIALS`` with any of 400/401/403: the access key was refused."""


class RecordingNotFound(ApiError, Terminal):
    """404 on retrieve: unknown recording (or, soon after a call, not ready yet)."""


class ApiUnavailable(ApiError, Transient):
    """429, 5xx, or a network error: try again later."""

    def __init__(
        self,
        message: str,
        *,
        recording_uuid: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, recording_uuid=recording_uuid)
        self.status_code = status_code
        self.retry_after = retry_after


class TruncatedBody(ApiUnavailable):
    """The body ended before Content-Length bytes arrived."""


class ApiUnreachable(ApiUnavailable):
    """No connection to TENIOS_API_URL at all: refused, the name does not resolve, the TLS
    handshake failed, or the connect timed out.  Says nothing about the recording: once
    the client's own retries are spent the run stops (tenios_io/run/stop.py).  ``url`` is
    the API's scheme, host and port (never a path or credentials)."""

    def __init__(
        self, message: str, *, url: str, reason: str = "", recording_uuid: str | None = None
    ) -> None:
        super().__init__(message, recording_uuid=recording_uuid)
        self.url = url
        self.reason = reason or message
        """What broke, in a few words (``ConnectError: [Errno 111] Connection refused``)."""


# -- S3 store -------------------------------------------------------------------------------


class StoreError(TeniosArchiveError):
    """Base for archive-store problems."""


class StoreUnavailable(StoreError, Transient):
    """S3 throttled, failed with 5xx, or was unreachable."""


class BucketNotUsable(StoreError, Terminal):
    """The bucket is missing, unreachable, or we lack a permission we need."""


class StoreAccessDenied(BucketNotUsable):
    """The bucket cannot be used by this run at all (it does not exist, the credentials
    are refused or expired, the KMS key is unusable): no object can succeed, so the run
    stops instead of failing recordings one by one (tenios_io/run/stop.py)."""


class ArchiveConflict(StoreError, Terminal):
    """The key already holds different bytes; it is never overwritten."""

    def __init__(
        self,
        message: str,
        *,
        recording_uuid: str | None = None,
        s3_key: str | None = None,
        expected_sha256: str | None = None,
        found_sha256: str | None = None,
    ) -> None:
        super().__init__(message, recording_uuid=recording_uuid, s3_key=s3_key)
        self.expected_sha256 = expected_sha256
        self.found_sha256 = found_sha256


class RetentionNotApplicable(StoreError, Terminal):
    """TENIOS_RETENTION_MODE asks for an Object Lock, but the recording's retain-until
    (its date + TENIOS_RETENTION_DAYS) is already past: S3 cannot lock an object until
    a past date, and an ``archived`` recording without its lock is what a compliance
    officer must never find.  Nothing is uploaded; the recording ends ``failed``."""


class VerificationFailed(StoreError, Terminal):
    """The read-back after upload did not match what was sent."""


# -- recording sources (SFTP) ---------------------------------------------------------------


class SourceError(TeniosArchiveError):
    """Base for recording-source problems (SFTP drop)."""


class SourceUnavailable(SourceError, Transient):
    """The source could not be read right now (dropped connection, file still changing)."""


class HostKeyError(SourceError, Terminal):
    """The SFTP server's host key is unknown or changed."""


class SourceFileMissing(SourceError, Terminal):
    """The file the ledger points at is not there."""


class SourceOutsideDrop(SourceFileMissing):
    """The path the ledger holds for a recording lies outside the drop (absolute
    elsewhere, ``..``, not normalised): a producer's hint is never followed there."""


# -- the local spool -------------------------------------------------------------------------


class SpoolUnusable(TeniosArchiveError, Transient):
    """The spool directory (TENIOS_SPOOL_DIR) cannot be written: the disk is full, the
    directory is gone, read-only or not ours.  Says nothing about the recording: the run
    stops without spending attempts (tenios_io/run/stop.py)."""


# -- what a source delivered --------------------------------------------------------------


class RecordingInvalid(TeniosArchiveError, Transient):
    """The bytes a source delivered are not the whole recording (see recording/validation.py).

    Transient: TENIOS may serve the whole recording on the next try, and a drop file
    still being written will be whole later; attempts bound the retries.
    """
