"""Three-way reconciliation: the ledger, the bucket listing, and the SFTP drop.

Like ``rclone check``, it lists what does not line up, per category:

``objects_not_in_ledger``
    recording objects (or the ``.json`` sidecars earlier versions wrote beside them)
    whose recording_uuid the ledger does not know;
``objects_not_archived``
    objects of known recordings that the ledger does not have as archived under
    that key (failed / conflict / purged rows, or another key);
``archived_without_object``
    ``archived`` rows whose object is not in the listing (deleted, or hidden by a
    delete marker);
``archived_without_manifest``
    ``archived`` rows that no custody manifest in the bucket names yet (the run that
    archived them stopped before writing it; the next run writes it);
``unrecognised_keys``
    keys under the prefix that are neither recordings, sidecars, custody manifests,
    checkpoints, the custody log nor the store's probe object;
``drop_files_not_registered``
    files in the SFTP drop (when one is given) that matched no ledger row: their
    recording_uuid is unknown, or their name is ambiguous (several UUIDs, none known);
``content_under_several_ids``
    one SHA-256 archived under more than one recording_uuid: the same recording
    archived twice (e.g. once under its call's id);
``unlogged_version``
    an object version no custody event names: at an archived recording's key, any
    version but the one the ledger archived; at a custody object written once (the
    log's tiles and checkpoints, manifests, the ledger id) or an earlier version's
    sidecar, any version after the first; of the log's latest checkpoint, a version
    that is no numbered checkpoint; under a delete marker at a key nothing else
    accounts for, every version;
``current_version_not_archived``
    an archived recording whose current version (what a GET answers) is not the one
    the ledger archived;
``delete_marker``
    a delete marker over an archived recording's key or a custody object.

The bucket is listed by version (ListObjectVersions): Object Lock does not keep
anyone allowed ``s3:PutObject`` from putting a new version at an archived key;
:mod:`tenios_io.custody.versions` holds the rules, shared with ``audit verify-bucket``.
The per-key categories above (``objects_not_in_ledger`` …) look at keys whose current
entry is an object, as a plain listing shows them.

Objects of recordings that are being archived right now (pending or in progress,
or archived after the listing began) are counted as in flight, not as problems.

The listing is streamed, one key's versions at a time, and looked up in the ledger
a page of keys at a time; what stays in memory is one set of recording uuids seen in
the bucket (about 100 bytes per archived recording).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import NamedTuple, TypeVar

from tenios_io.custody.versions import (
    CheckpointCopies,
    KeyKind,
    KeyVersions,
    VersionFinding,
    VersionRules,
    group_by_key,
)
from tenios_io.ledger import Ledger, Recording, State
from tenios_io.store import SIDECAR_SUFFIX, ArchiveStore, parse_object_key

_PAGE = 1000
_T = TypeVar("_T")
_IN_FLIGHT = frozenset({State.PENDING, State.IN_PROGRESS})


class Category(StrEnum):
    """What kind of mismatch a finding is (see the module docstring)."""

    OBJECTS_NOT_IN_LEDGER = "objects_not_in_ledger"
    OBJECTS_NOT_ARCHIVED = "objects_not_archived"
    ARCHIVED_WITHOUT_OBJECT = "archived_without_object"
    ARCHIVED_WITHOUT_MANIFEST = "archived_without_manifest"
    UNRECOGNISED_KEYS = "unrecognised_keys"
    DROP_FILES_NOT_REGISTERED = "drop_files_not_registered"
    CONTENT_UNDER_SEVERAL_IDS = "content_under_several_ids"
    UNLOGGED_VERSION = "unlogged_version"
    CURRENT_VERSION_NOT_ARCHIVED = "current_version_not_archived"
    DELETE_MARKER = "delete_marker"


class DropEntry(NamedTuple):
    """A file in the SFTP drop: its path, the recording_uuid its name was matched to
    (None: ambiguous) and why it could not be matched."""

    path: str
    recording_uuid: str | None
    why: str = ""


@dataclass(frozen=True)
class Finding:
    """One mismatch: where (an S3 key or a drop path), which recording, and why."""

    category: Category
    location: str
    recording_uuid: str | None
    detail: str


@dataclass
class ReconcileReport:
    """Every finding by category, and how much was compared."""

    findings: dict[Category, list[Finding]] = field(
        default_factory=lambda: {category: [] for category in Category}
    )
    listed_keys: int = 0
    """Keys whose current entry is an object (what a plain listing shows)."""
    listed_versions: int = 0
    """Object versions and delete markers under the prefix."""
    archived_rows: int = 0
    drop_files: int | None = None
    """None when no drop was compared."""
    in_flight: int = 0
    other_buckets: int = 0
    """Archived rows of another bucket (not compared)."""

    def add(
        self, category: Category, location: str, recording_uuid: str | None, detail: str
    ) -> None:
        self.findings[category].append(Finding(category, location, recording_uuid, detail))

    def counts(self) -> dict[Category, int]:
        return {category: len(items) for category, items in self.findings.items()}

    @property
    def ok(self) -> bool:
        """Nothing in any category."""
        return not any(self.findings.values())


class _Listed(NamedTuple):
    key: str
    recording_uuid: str
    sidecar: bool
    versions: KeyVersions


def reconcile(
    ledger: Ledger,
    store: ArchiveStore,
    drop: Iterable[DropEntry] | None = None,
    *,
    on_progress: Callable[[str, int], None] | None = None,
) -> ReconcileReport:
    """Compare the ledger, the bucket listing and (if given) the drop's files.

    ``on_progress(phase, n)`` is called as keys, rows and drop files are counted.
    """
    report = ReconcileReport()
    started = ledger.now()
    unmanifested = {key for key, queued in ledger.manifests_pending() if queued <= started}
    tick = on_progress or (lambda _phase, _n: None)
    seen_objects: set[str] = set()

    rules = VersionRules(store.bucket, store.prefix)
    for page in _pages(_classify(store, rules, report), _PAGE):
        rows = ledger.rows_for(item.recording_uuid for item in page)
        for item in page:
            _match(report, rules, item, rows.get(item.recording_uuid), seen_objects)
        tick("bucket", len(page))

    for rec in ledger.iter_archived():
        if rec.s3_bucket and rec.s3_bucket != store.bucket:
            report.other_buckets += 1
            continue
        if rec.archived_at is not None and rec.archived_at > started:
            report.in_flight += 1  # archived after the listing began: may not be listed
            continue
        report.archived_rows += 1
        key = rec.s3_key or "(no key in the ledger)"
        if rec.recording_uuid not in seen_objects:
            report.add(
                Category.ARCHIVED_WITHOUT_OBJECT,
                key,
                rec.recording_uuid,
                "the ledger says archived; the bucket lists no object at this key",
            )
        if report.archived_rows % _PAGE == 0:
            tick("ledger", _PAGE)

    # Still queued now, and already before the listing began: the run that archived them
    # is not about to write their manifest (it writes it right after their outcomes).
    still = {key for key, _ in ledger.manifests_pending()} & unmanifested
    for rec in ledger.rows_for(still).values():
        if rec.state is State.ARCHIVED:
            report.add(
                Category.ARCHIVED_WITHOUT_MANIFEST,
                rec.s3_key or "(no key in the ledger)",
                rec.recording_uuid,
                "archived; no custody manifest in the bucket names it yet (the next run "
                "writes the missing manifests)",
            )

    for digest, ids in ledger.shared_content():
        for recording_uuid in ids:
            report.add(
                Category.CONTENT_UNDER_SEVERAL_IDS,
                digest,
                recording_uuid,
                f"SHA-256 {digest} is archived under {len(ids)} recording ids: " + ", ".join(ids),
            )

    if drop is not None:
        report.drop_files = 0
        for page_ in _pages((DropEntry(*entry) for entry in drop), _PAGE):
            report.drop_files += len(page_)
            known = ledger.rows_for(e.recording_uuid for e in page_ if e.recording_uuid)
            for entry in page_:
                if entry.recording_uuid is None:
                    report.add(
                        Category.DROP_FILES_NOT_REGISTERED,
                        entry.path,
                        None,
                        f"in the SFTP drop, matched no ledger row: {entry.why}",
                    )
                elif entry.recording_uuid.lower() not in known:
                    report.add(
                        Category.DROP_FILES_NOT_REGISTERED,
                        entry.path,
                        entry.recording_uuid.lower(),
                        "in the SFTP drop, never registered in the ledger",
                    )
            tick("drop", len(page_))
    return report


def _classify(
    store: ArchiveStore, rules: VersionRules, report: ReconcileReport
) -> Iterator[_Listed]:
    """Recording objects and sidecars of the listing, key by key; everything else (custody
    objects, the probe, strays) is checked here."""
    copies = CheckpointCopies(store)
    for group in group_by_key(store.iter_versions()):
        report.listed_versions += len(group.entries)
        if group.live:
            report.listed_keys += 1
        key = group.key
        parts = parse_object_key(store.prefix, key)
        if parts is not None:
            yield _Listed(key, parts.recording_uuid, sidecar=False, versions=group)
            continue
        if key.endswith(SIDECAR_SUFFIX):
            owner = parse_object_key(store.prefix, key[: -len(SIDECAR_SUFFIX)])
            if owner is not None:
                yield _Listed(key, owner.recording_uuid, sidecar=True, versions=group)
                continue
        kind = rules.kind(key)
        if kind is KeyKind.LATEST_CHECKPOINT:
            _add_versions(report, None, copies.findings(rules, group))
        elif kind is KeyKind.CUSTODY:
            _add_versions(report, None, rules.written_once(group, rules.custody_object(key)))
        elif kind is KeyKind.PROBE:
            _add_versions(report, None, rules.probe(group))
        elif group.live:
            report.add(
                Category.UNRECOGNISED_KEYS,
                key,
                None,
                "neither a recording, a sidecar, a custody manifest, a checkpoint, the custody "
                "log nor the probe object",
            )
        else:
            _add_versions(report, None, rules.hidden(group))


def _match(
    report: ReconcileReport,
    rules: VersionRules,
    item: _Listed,
    rec: Recording | None,
    seen_objects: set[str],
) -> None:
    what = "sidecar" if item.sidecar else "object"
    expected = None
    if rec is not None:
        expected = rec.s3_key + SIDECAR_SUFFIX if item.sidecar and rec.s3_key else rec.s3_key
    if rec is not None and rec.state is State.ARCHIVED and item.key == expected:
        if item.sidecar:  # an earlier version's sidecar is accepted, never required
            found = rules.written_once(
                item.versions, f"the sidecar of recording {rec.recording_uuid}"
            )
        else:
            found = rules.archived(item.versions, rec.s3_version_id, rec.recording_uuid)
            if item.versions.live:
                seen_objects.add(rec.recording_uuid)
        _add_versions(report, rec.recording_uuid, found)
        return
    if not item.versions.live:
        if rec is None or rec.state not in _IN_FLIGHT:
            _add_versions(report, item.recording_uuid, rules.hidden(item.versions))
        return
    if rec is None:
        report.add(
            Category.OBJECTS_NOT_IN_LEDGER,
            item.key,
            item.recording_uuid,
            f"{what} of a recording the ledger does not know",
        )
        return
    if rec.state in _IN_FLIGHT:
        report.in_flight += 1
        return
    if rec.state is State.ARCHIVED:
        detail = f"{what} at another key than the ledger's {expected}"
    else:
        detail = f"{what} of a recording the ledger has as {rec.state.value}"
    report.add(Category.OBJECTS_NOT_ARCHIVED, item.key, rec.recording_uuid, detail)


def _add_versions(
    report: ReconcileReport, recording_uuid: str | None, found: Iterable[VersionFinding]
) -> None:
    for finding in found:
        report.add(Category(finding.check), finding.key, recording_uuid, finding.detail)


def _pages(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while page := list(islice(iterator, size)):
        yield page
