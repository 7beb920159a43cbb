"""Verifying archived recordings against the bucket: is every object still what the ledger says?

For each ``archived`` recording the archived object version (the version id the
ledger recorded) is HEADed and compared with the ledger row: size, SHA-256
(S3's full-object checksum, else our metadata), Object Lock mode and retain-until
(or the ``retention-mode`` / ``retain-until`` tags on a bucket without Object
Lock), and legal hold.  The current version under the key must still be the
archived one (a delete marker or a newer version would hide it).  The object's
custody metadata (written in its one PUT: ``recording-uuid``, ``sha256``, ``size``,
``call-uuid``) must say the same as the ledger.  An object written by an earlier
version has no such metadata but has a ``.json`` sidecar beside it: that sidecar
must describe the same object, and the custody event hash it carries must be one of
the recording's events in the ledger.  A sidecar is never required of an object
with custody metadata; an object with neither is a discrepancy.  ``deep`` also
downloads the version and re-hashes its bytes.

Each verdict is a custody event written with ``Ledger.annotate``: ``verified``
(and ``last_verified_at`` set), or ``discrepancy`` listing what differed as
``{field, expected, found}``.  A recording that could not be checked (S3
unavailable) gets no event and is reported as an error; it stays least recently
verified, so the next rolling run picks it first.

Selections: ``all``, a random ``sample`` of a percentage, or ``rolling``: a nightly
run checks ``ceil(archived / cycle_days)`` recordings, least recently verified
first, so the whole archive is re-verified every ``cycle_days`` days (the idea of
restic's ``check --read-data-subset``); a run every N days takes N times as many.
A recording with a discrepancy keeps its old ``last_verified_at``, so every rolling
run checks it again first until it verifies (or is dealt with).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import islice
from typing import Any, Literal

from tenios_io.custody.times import iso, parse_time
from tenios_io.exceptions import StoreUnavailable, VerificationFailed
from tenios_io.ledger import Ledger, Recording
from tenios_io.store import ArchiveStore, ObjectInfo
from tenios_io.store.metadata import matches, written_with_custody_metadata

SelectionMode = Literal["all", "sample", "rolling"]


class VerifyStatus(StrEnum):
    """The verdict on one recording."""

    VERIFIED = "verified"
    DISCREPANCY = "discrepancy"
    ERROR = "error"
    """Could not be checked now (S3 unavailable): no custody event, retried next run."""


@dataclass(frozen=True)
class Difference:
    """One thing that is not what the ledger says: ``expected`` (ledger) vs ``found`` (bucket)."""

    field: str
    expected: Any
    found: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "expected": self.expected, "found": self.found}

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected!r}, found {self.found!r}"


@dataclass(frozen=True)
class VerifyResult:
    """What checking one recording found."""

    recording_uuid: str
    status: VerifyStatus
    s3_key: str | None
    version_id: str | None
    deep: bool
    differences: tuple[Difference, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which archived recordings one verify run checks."""

    mode: SelectionMode
    archived: int
    """Archived recordings in scope (the ``since`` filter applied)."""
    count: int
    """How many this run checks."""
    recordings: Iterable[Recording]


@dataclass
class VerifyReport:
    """The outcome of a verify run."""

    deep: bool
    checked: int = 0
    verified: int = 0
    discrepancies: list[VerifyResult] = field(default_factory=list)
    errors: list[VerifyResult] = field(default_factory=list)

    def add(self, result: VerifyResult) -> None:
        self.checked += 1
        if result.status is VerifyStatus.VERIFIED:
            self.verified += 1
        elif result.status is VerifyStatus.DISCREPANCY:
            self.discrepancies.append(result)
        else:
            self.errors.append(result)

    @property
    def ok(self) -> bool:
        """Every checked recording verified (no discrepancy, no error)."""
        return not self.discrepancies and not self.errors


# -- choosing what to verify -----------------------------------------------------------------


def select_recordings(
    ledger: Ledger,
    mode: SelectionMode = "all",
    *,
    percent: float | None = None,
    cycle_days: int | None = None,
    every_days: int = 1,
    since: datetime | None = None,
) -> Selection:
    """The archived recordings a verify run should check (see the module docstring).

    ``percent`` (0 < p <= 100) is required for ``sample``, ``cycle_days`` (>= 1) for
    ``rolling``; ``every_days`` is how often the rolling run happens (1 nightly, 7
    weekly), so each run takes ``ceil(archived * every_days / cycle_days)``.
    ``since`` keeps recordings archived on or after that moment.
    """
    archived = ledger.count_archived(since=since)
    if mode == "all":
        return Selection(mode, archived, archived, ledger.iter_archived(since=since))
    if mode == "sample":
        if percent is None or not 0 < percent <= 100:
            raise ValueError("sample needs a percentage above 0 and at most 100")
        count = min(archived, math.ceil(archived * percent / 100))
        return Selection(mode, archived, count, ledger.random_archived(count, since=since))
    if mode == "rolling":
        if cycle_days is None or cycle_days < 1 or every_days < 1:
            raise ValueError("rolling needs cycle_days and every_days of at least 1")
        count = min(archived, math.ceil(archived * every_days / cycle_days))
        return Selection(mode, archived, count, ledger.least_recently_verified(count, since=since))
    raise ValueError(f"unknown selection mode {mode!r}")


# -- checking one recording ------------------------------------------------------------------


def check_recording(
    ledger: Ledger, store: ArchiveStore, rec: Recording, *, deep: bool = False
) -> VerifyResult:
    """Compare one archived recording with the bucket; reads only (no custody event)."""
    key, version = rec.s3_key, rec.s3_version_id
    incomplete = [
        Difference(f"ledger.{name}", "a value", None)
        for name, value in (("s3_key", key), ("sha256", rec.sha256), ("size_bytes", rec.size_bytes))
        if value is None
    ]
    if key is None or incomplete:
        return _verdict(rec, deep, incomplete)
    if rec.s3_bucket and rec.s3_bucket != store.bucket:
        return VerifyResult(
            rec.recording_uuid,
            VerifyStatus.ERROR,
            key,
            version,
            deep,
            error=f"archived in bucket {rec.s3_bucket!r}, this run checks {store.bucket!r}",
        )
    try:
        info, differences = _check_object(store, rec, key, version)
        if info is None:
            return _verdict(rec, deep, differences)  # nothing more to compare against
        if written_with_custody_metadata(info.metadata):
            differences += compare_metadata(rec, info.metadata)
        else:  # written by an earlier version: its sidecar, if it has one
            differences += _check_sidecar(ledger, store, rec, key)
        if deep:
            differences += _check_content(store, rec, key, version)
    except StoreUnavailable as exc:
        return VerifyResult(
            rec.recording_uuid, VerifyStatus.ERROR, key, version, deep, error=str(exc)
        )
    return _verdict(rec, deep, differences)


def _verdict(rec: Recording, deep: bool, differences: list[Difference]) -> VerifyResult:
    status = VerifyStatus.DISCREPANCY if differences else VerifyStatus.VERIFIED
    return VerifyResult(
        rec.recording_uuid, status, rec.s3_key, rec.s3_version_id, deep, tuple(differences)
    )


def _check_object(
    store: ArchiveStore, rec: Recording, key: str, version: str | None
) -> tuple[ObjectInfo | None, list[Difference]]:
    info = store.head(key, version)
    if info is None:
        where = f"version {version}" if version else "the object"
        return None, [Difference("object", f"{where} at {key}", "missing")]
    tags: dict[str, str] | None = None
    if info.lock_mode is None:
        # No Object Lock period on this version: retention (and, without Object Lock,
        # the legal hold) is recorded as tags.
        tagged = store.head(key, version, with_tags=True)
        tags = (tagged.tags if tagged is not None else None) or {}
    differences = compare_object(rec, info, tags)
    if version is not None:
        current = store.head(key)
        if current is None or current.version_id != version:
            differences.append(
                Difference(
                    "current_version",
                    version,
                    current.version_id
                    if current is not None
                    else "none (deleted: a delete marker hides the archived version)",
                )
            )
    return info, differences


def _check_sidecar(
    ledger: Ledger, store: ArchiveStore, rec: Recording, key: str
) -> list[Difference]:
    try:
        document = store.read_sidecar(key)
    except VerificationFailed as exc:
        return [Difference("sidecar", "a JSON object", f"unreadable: {exc}")]
    if document is None:
        return [
            Difference(
                "custody_metadata",
                "custody metadata on the object (or an earlier version's sidecar)",
                "missing",
            )
        ]
    differences = compare_sidecar(rec, document)
    event_hash = document.get("custody_event_hash") if document else None
    if isinstance(event_hash, str) and not ledger.recording_has_event(
        rec.recording_uuid, event_hash
    ):
        differences.append(
            Difference(
                "sidecar.custody_event_hash",
                "the hash of one of this recording's custody events",
                event_hash,
            )
        )
    return differences


def _check_content(
    store: ArchiveStore, rec: Recording, key: str, version: str | None
) -> list[Difference]:
    try:
        sha256, size = store.hash_object(key, version_id=version)
    except VerificationFailed as exc:
        return [Difference("content", "the archived bytes", f"unreadable: {exc}")]
    differences = []
    if sha256 != rec.sha256:
        differences.append(Difference("content.sha256", rec.sha256, sha256))
    if size != rec.size_bytes:
        differences.append(Difference("content.size", rec.size_bytes, size))
    return differences


# -- pure comparisons (unit-tested) ----------------------------------------------------------


def compare_object(
    rec: Recording, info: ObjectInfo, tags: dict[str, str] | None = None
) -> list[Difference]:
    """What the HEAD of the archived version says that the ledger row does not.

    ``tags`` are the version's tags, needed where it has no Object Lock (retention
    and legal hold are recorded as tags there); None when it is locked.
    """
    differences: list[Difference] = []
    if rec.s3_version_id is not None and info.version_id != rec.s3_version_id:
        differences.append(Difference("version_id", rec.s3_version_id, info.version_id))
    if info.size != rec.size_bytes:
        differences.append(Difference("size", rec.size_bytes, info.size))
    if info.sha256 != rec.sha256:
        differences.append(Difference("sha256", rec.sha256, info.sha256))
    meta_sha = info.metadata.get("sha256")
    if meta_sha is not None and meta_sha != rec.sha256 and info.sha256 != meta_sha:
        differences.append(Difference("metadata.sha256", rec.sha256, meta_sha))
    tags = tags or {}
    if info.lock_mode is not None:
        mode: str = info.lock_mode
        until = info.retain_until
    else:
        mode = tags.get("retention-mode", "none")
        until = parse_time(tags.get("retain-until"))
    expected_mode = rec.retention_mode or "none"
    if mode != expected_mode:
        differences.append(Difference("retention_mode", expected_mode, mode))
    if not _same_instant(until, rec.retain_until):
        differences.append(Difference("retain_until", iso(rec.retain_until), iso(until)))
    hold = info.legal_hold or tags.get("legal-hold") == "on"
    if hold != rec.legal_hold:
        differences.append(Difference("legal_hold", rec.legal_hold, hold))
    return differences


def compare_metadata(rec: Recording, metadata: dict[str, str]) -> list[Difference]:
    """What the object's custody metadata (decoded) says that the ledger row does not.

    ``sha256`` is compared with the rest of the HEAD (:func:`compare_object`);
    ``fetched-at`` is not compared (a re-run after a crash fetches again, and the
    object keeps the first fetch's time).  A ``call-uuid`` shortened to its SHA-256
    (too long for S3's metadata) matches the ledger's value by that hash.
    """
    differences: list[Difference] = []
    found_uuid = metadata.get("recording-uuid")
    if _normalised(found_uuid) != _normalised(rec.recording_uuid):
        differences.append(Difference("metadata.recording-uuid", rec.recording_uuid, found_uuid))
    found_size = metadata.get("size")
    if found_size != str(rec.size_bytes):
        differences.append(Difference("metadata.size", rec.size_bytes, found_size))
    found_call = metadata.get("call-uuid")
    if rec.call_uuid and not matches(found_call, rec.call_uuid):
        differences.append(Difference("metadata.call-uuid", rec.call_uuid, found_call))
    return differences


def compare_sidecar(rec: Recording, document: dict[str, Any]) -> list[Difference]:
    """What an earlier version's sidecar says that the ledger row does not.

    The sidecar's ``legal_hold`` is not compared: it is the state at archiving time,
    and holds placed later are recorded in the ledger and on the object.
    """
    expected: dict[str, Any] = {
        "recording_uuid": rec.recording_uuid,
        "sha256": rec.sha256,
        "size": rec.size_bytes,
        "bucket": rec.s3_bucket,
        "key": rec.s3_key,
        "version_id": rec.s3_version_id,
        "retention_mode": rec.retention_mode or "none",
    }
    differences = [
        Difference(f"sidecar.{name}", value, document.get(name))
        for name, value in expected.items()
        if _normalised(document.get(name)) != _normalised(value)
    ]
    found_until = parse_time(document.get("retain_until"))
    if not _same_instant(found_until, rec.retain_until):
        differences.append(
            Difference("sidecar.retain_until", iso(rec.retain_until), document.get("retain_until"))
        )
    return differences


def _normalised(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _same_instant(found: datetime | None, expected: datetime | None) -> bool:
    if found is None or expected is None:
        return found is expected
    return abs((found - expected).total_seconds()) < 1


# -- running and recording -------------------------------------------------------------------


def record_result(ledger: Ledger, result: VerifyResult, *, actor: str | None = None) -> None:
    """Write the verdict as a custody event (nothing for an error)."""
    if result.status is VerifyStatus.ERROR:
        return
    details: dict[str, Any] = {
        "method": "audit-deep" if result.deep else "audit-head",
        "key": result.s3_key,
        "version_id": result.version_id,
    }
    if result.status is VerifyStatus.VERIFIED:
        ledger.annotate(
            result.recording_uuid,
            "verified",
            details,
            updates={"last_verified_at": ledger.now()},
            actor=actor,
        )
    else:
        details["differences"] = [d.to_dict() for d in result.differences]
        ledger.annotate(result.recording_uuid, "discrepancy", details, actor=actor)


def verify_archive(
    ledger: Ledger,
    store: ArchiveStore,
    recordings: Iterable[Recording],
    *,
    deep: bool = False,
    workers: int = 4,
    actor: str | None = None,
    on_result: Callable[[VerifyResult], None] | None = None,
) -> VerifyReport:
    """Check and record every recording; ``workers`` recordings are checked at a time.

    Reads the recordings lazily in chunks, so ``all`` over millions stays bounded in
    memory.  ``on_result`` is called for each result (a progress bar, say).
    """
    report = VerifyReport(deep=deep)

    def one(rec: Recording) -> VerifyResult:
        result = check_recording(ledger, store, rec, deep=deep)
        record_result(ledger, result, actor=actor)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify") as pool:
        for chunk in _chunks(recordings, max(1, workers) * 16):
            for result in pool.map(one, chunk):
                report.add(result)
                if on_result is not None:
                    on_result(result)
    return report


def _chunks(items: Iterable[Recording], size: int) -> Iterator[list[Recording]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
