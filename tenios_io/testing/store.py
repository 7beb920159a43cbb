"""MemoryStore: the Archiver's store in memory (see tenios_io.testing).

It keeps the promises tests/integration/test_fakes_contract.py checks of the real
:class:`~tenios_io.store.ArchiveStore` on moto: keys from :func:`object_key`, never an
overwrite (the same bytes again are ``already_archived``, other bytes
ArchiveConflict), retention until the recording's date plus the period, legal holds
that HEAD shows, documents written once.  It also lets a test look inside
(``calls``, ``holds_set``, ``body()``, ``documents``) and make the next uploads fail
(``fail_with``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from tenios_io.exceptions import ArchiveConflict, VerificationFailed
from tenios_io.recording.spool import Spooled
from tenios_io.store.keys import object_key
from tenios_io.store.results import ArchivedObject, ObjectInfo, RetentionMode

__all__ = ["MemoryStore"]


@dataclass
class _Object:
    info: ObjectInfo
    body: bytes


@dataclass
class MemoryStore:
    """An in-memory :class:`~tenios_io.store.protocols.ArchiverStore`.

    ``object_lock``: whether retention and holds are enforced (as on a bucket with
    Object Lock) or only recorded (tags, on one without).
    """

    bucket: str = "memory"
    prefix: str = "recordings"
    retention_mode: RetentionMode = "governance"
    retention_days: int = 30
    object_lock: bool = True
    fail_with: list[Exception] = field(default_factory=list)
    """Raised, one each, by the next uploads (after the call is noted in ``calls``)."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every ``archive`` call's keyword arguments."""
    holds_set: list[tuple[str, str | None, bool]] = field(default_factory=list)
    """Every ``set_legal_hold`` call: key, version id, on."""
    documents: dict[str, bytes] = field(default_factory=dict)
    """Every document written, by key."""
    _objects: dict[str, _Object] = field(default_factory=dict)
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- RecordingWriter -------------------------------------------------------------------

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
        self.calls.append(
            {
                "recording_uuid": recording_uuid,
                "call_uuid": call_uuid,
                "source": source,
                "key_date": key_date,
                "legal_hold": legal_hold,
                "retention_days": retention_days,
                "audio_metadata": audio_metadata,
                "fetched_at": fetched_at,
            }
        )
        key = object_key(self.prefix, recording_uuid, key_date, spooled.extension)
        if self.fail_with:
            raise self.fail_with.pop(0)
        body = spooled.path.read_bytes()
        if hashlib.sha256(body).hexdigest() != spooled.sha256 or len(body) != spooled.size:
            raise VerificationFailed(f"{key}: the spool does not hold what was hashed", s3_key=key)
        mode, retain_until = self._retention(key_date, retention_days)
        existing = self._objects.get(key)
        if existing is not None:
            info = existing.info
            if (info.sha256, info.size) != (spooled.sha256, spooled.size):
                raise ArchiveConflict(
                    f"{key} already holds other bytes",
                    recording_uuid=recording_uuid,
                    s3_key=key,
                    expected_sha256=spooled.sha256,
                    found_sha256=info.sha256,
                )
            if legal_hold and not info.legal_hold:
                self._hold(key, True)
            info = self._objects[key].info
        else:
            info = self._put(key, body, spooled.content_type, retain_until, legal_hold)
        return ArchivedObject(
            bucket=self.bucket,
            key=key,
            version_id=info.version_id,
            sha256=spooled.sha256,
            size=spooled.size,
            content_type=info.content_type or spooled.content_type,
            retention_mode=mode,
            retain_until=retain_until,
            retention_enforced=info.lock_mode is not None,
            already_archived=existing is not None,
            legal_hold=info.legal_hold,
            recording_uuid=recording_uuid.lower(),
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
        if retain_until is not None and retain_until.tzinfo is None:
            raise ValueError("retain_until must be timezone-aware")
        existing = self._objects.get(key)
        if existing is not None:
            if existing.body != body:
                raise ArchiveConflict(
                    f"{key} already holds a different document",
                    s3_key=key,
                    expected_sha256=hashlib.sha256(body).hexdigest(),
                    found_sha256=existing.info.sha256,
                )
            return existing.info.version_id
        if self.retention_mode == "none" or (retain_until and retain_until <= datetime.now(UTC)):
            retain_until = None
        self.documents[key] = body
        return self._put(key, body, content_type, retain_until, False).version_id

    # -- LegalHolds ------------------------------------------------------------------------

    def set_legal_hold(self, key: str, version_id: str | None, on: bool) -> None:
        self.holds_set.append((key, version_id, on))
        found = self._objects.get(key)
        if found is None or (version_id is not None and found.info.version_id != version_id):
            raise VerificationFailed(f"{key} (version {version_id}) does not exist", s3_key=key)
        self._hold(key, on)

    def head(
        self, key: str, version_id: str | None = None, *, with_tags: bool = False
    ) -> ObjectInfo | None:
        found = self._objects.get(key)
        if found is None or (version_id is not None and found.info.version_id != version_id):
            return None
        return found.info if with_tags else replace(found.info, tags=None)

    # -- for tests -------------------------------------------------------------------------

    def body(self, key: str) -> bytes:
        """The bytes stored at ``key`` (KeyError if none)."""
        return self._objects[key].body

    # -- inside ----------------------------------------------------------------------------

    def _retention(
        self, key_date: date, retention_days: int | None
    ) -> tuple[RetentionMode, datetime | None]:
        days = self.retention_days if retention_days is None else retention_days
        if days < 0:
            raise ValueError("retention_days must be >= 0")
        if self.retention_mode == "none":
            return "none", None
        return self.retention_mode, datetime.combine(key_date, time(0), tzinfo=UTC) + timedelta(
            days=days
        )

    def _put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        retain_until: datetime | None,
        legal_hold: bool,
    ) -> ObjectInfo:
        sha256 = hashlib.sha256(body).hexdigest()
        locked = self.object_lock and retain_until is not None and retain_until > datetime.now(UTC)
        lock_mode: Literal["compliance", "governance"] | None = None
        tags: dict[str, str] = {}
        if locked and self.retention_mode != "none":
            lock_mode = self.retention_mode
        elif retain_until is not None:
            tags = {"retention-mode": self.retention_mode}
        info = ObjectInfo(
            key=key,
            version_id=f"v{next(self._versions)}",
            size=len(body),
            sha256=sha256,
            checksum_sha256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            content_type=content_type,
            last_modified=datetime.now(UTC),
            lock_mode=lock_mode,
            retain_until=retain_until if lock_mode else None,
            legal_hold=legal_hold,
            tags=tags,
        )
        self._objects[key] = _Object(info, body)
        return info

    def _hold(self, key: str, on: bool) -> None:
        found = self._objects[key]
        found.info = replace(found.info, legal_hold=on)
