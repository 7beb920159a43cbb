"""The store's retention part: how each write is protected, legal holds, and deletes.

:class:`RetentionPolicy` knows whether the bucket has Object Lock (asked once, then
remembered), plans the protection of each recording and document it writes
(:class:`~tenios_io.store.retention.Retention`: lock headers, a legal hold header, or
tags), turns legal holds on and off, and deletes an object version once its retention
is over.  Without Object Lock retention and holds are recorded as tags, which are a
record, not a protection: a warning says so once per policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from tenios_io.exceptions import RetentionNotApplicable, VerificationFailed
from tenios_io.store.bucket import Bucket
from tenios_io.store.errors import error_code
from tenios_io.store.responses import version_arg
from tenios_io.store.results import RETENTION_MODES, RetentionMode
from tenios_io.store.retention import NO_RETENTION, Retention, iso, lock_mode_for

__all__ = ["RetentionPolicy"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RetentionPolicy:
    """Retention ``mode`` for ``days`` (for recordings: from the recording's date), and
    legal holds, on one bucket."""

    def __init__(
        self,
        bucket: Bucket,
        *,
        mode: RetentionMode,
        days: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if mode not in RETENTION_MODES:
            raise ValueError(f"retention_mode must be one of {RETENTION_MODES}")
        if days < 0:
            raise ValueError("retention_days must be >= 0")
        self._s3 = bucket
        self._log: logging.Logger = bucket.log
        self._mode: RetentionMode = mode
        self._days = days
        self._object_lock: bool | None = None
        self._warned_unenforced = False
        #: What "now" is when a recording's retain-until is judged past (tests archive
        #: "back then" to make recordings whose lock has since ended).
        self.clock: Callable[[], datetime] = clock or _utc_now

    @property
    def mode(self) -> RetentionMode:
        """The retention applied to what is written."""
        return self._mode

    @property
    def days(self) -> int:
        """The retention period in days (for recordings: from the recording's date)."""
        return self._days

    # -- the bucket's Object Lock ---------------------------------------------------------

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock (asked once per policy, then remembered)."""
        if self._object_lock is None:
            self.lock_configuration()
        assert self._object_lock is not None
        return self._object_lock

    def lock_configuration(self) -> tuple[bool, str | None]:
        """Ask the bucket: Object Lock on or off, and its default retention rule if any."""
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

    # -- planning one write ---------------------------------------------------------------

    def for_recording(
        self, key: str, key_date: date, retention_days: int | None, legal_hold: bool
    ) -> Retention:
        """How the recording at ``key`` (dated ``key_date``) is protected when written;
        ``retention_days`` overrides the policy's period.  RetentionNotApplicable when
        the bucket has Object Lock, the mode asks for it and the period is already over."""
        days = self._days if retention_days is None else retention_days
        if days < 0:
            raise ValueError("retention_days must be >= 0")
        lock = self.object_lock_enabled() if (self._mode != "none" or legal_hold) else False
        tags: dict[str, str] = {}
        if legal_hold and not lock:
            tags["legal-hold"] = "on"
            self.warn_unenforced()
        if self._mode == "none":
            return Retention("none", None, None, legal_hold, legal_hold and lock, tags)
        retain_until = datetime.combine(key_date, time(0), tzinfo=UTC) + timedelta(days=days)
        lock_mode = lock_mode_for(self._mode)
        if not lock:
            self.warn_unenforced()
            lock_mode = None
        elif retain_until <= self.clock():
            # S3 refuses a retain-until date in the past, and an archived recording
            # without the lock its mode promises is what must never happen silently
            # (issue 25): refuse before anything is uploaded.
            raise RetentionNotApplicable(
                f"its retention ({self._mode}, {days} days from {key_date:%Y-%m-%d}) ended "
                f"{retain_until:%Y-%m-%d}: an Object Lock cannot be set to a past date, so it "
                "is not archived (check its recorded_at; to archive it anyway, raise "
                "TENIOS_RETENTION_DAYS and run `ledger requeue`)",
                s3_key=key,
            )
        if lock_mode is None:
            tags["retention-mode"] = self._mode
            tags["retain-until"] = iso(retain_until)
        return Retention(self._mode, retain_until, lock_mode, legal_hold, legal_hold and lock, tags)

    def for_document(self, key: str, retain_until: datetime | None) -> Retention:
        """How a document at ``key`` is protected: locked until ``retain_until`` where the
        bucket has Object Lock and the policy retains at all, otherwise not at all."""
        if retain_until is None or self._mode == "none":
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
        lock_mode = lock_mode_for(self._mode)
        return Retention(self._mode, retain_until, lock_mode, False, False, {})

    def warn_unenforced(self) -> None:
        """Warn once that retention and holds on this bucket are tags, not protection."""
        if not self._warned_unenforced:
            self._warned_unenforced = True
            self._log.warning(
                "bucket %s has no Object Lock: retention and legal holds are recorded as object "
                "tags but NOT enforced (anyone allowed to delete can delete); archive into a "
                "bucket created with Object Lock enabled",
                self._s3.name,
            )

    # -- legal hold and deletes -----------------------------------------------------------

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
            self.warn_unenforced()
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
