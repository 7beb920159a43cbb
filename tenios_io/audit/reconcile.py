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
    archived twice (e.g. once under its call's id).

Objects of recordings that are being archived right now (pending or in progress,
or archived after the listing began) are counted as in flight, not as problems.

The listing is streamed and looked up in the ledger a page at a time; what stays
in memory is one set of recording uuids seen in the bucket (about 100 bytes per
archived recording).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import NamedTuple, TypeVar

from tenios_io.custody.layout import log_prefix
from tenios_io.ledger import Ledger, Recording, State
from tenios_io.publish.checkpoints import checkpoint_prefix
from tenios_io.publish.identity import ledger_id_key
from tenios_io.store import PROBE_NAME, SIDECAR_SUFFIX, ArchiveStore, parse_object_key
from tenios_io.store.keys import manifest_prefix

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

    for page in _pages(_classify(store, report), _PAGE):
        rows = ledger.rows_for(item.recording_uuid for item in page)
        for item in page:
            _match(report, item, rows.get(item.recording_uuid), seen_objects)
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


def _classify(store: ArchiveStore, report: ReconcileReport) -> Iterator[_Listed]:
    """Recording objects and sidecars of the listing; everything else is noted here."""
    prefix = store.prefix
    probe = f"{prefix}/{PROBE_NAME}" if prefix else PROBE_NAME
    checkpoints = checkpoint_prefix(prefix)
    ledger_id = ledger_id_key(prefix)
    for obj in store.iter_objects():
        report.listed_keys += 1
        key = obj.key
        parts = parse_object_key(prefix, key)
        if parts is not None:
            yield _Listed(key, parts.recording_uuid, sidecar=False)
            continue
        if key.endswith(SIDECAR_SUFFIX):
            owner = parse_object_key(prefix, key[: -len(SIDECAR_SUFFIX)])
            if owner is not None:
                yield _Listed(key, owner.recording_uuid, sidecar=True)
                continue
        if key in (probe, ledger_id) or key.startswith(
            (checkpoints, log_prefix(prefix), manifest_prefix(prefix))
        ):
            continue
        report.add(
            Category.UNRECOGNISED_KEYS,
            key,
            None,
            "neither a recording, a sidecar, a custody manifest, a checkpoint, the custody "
            "log nor the probe object",
        )


def _match(
    report: ReconcileReport,
    item: _Listed,
    rec: Recording | None,
    seen_objects: set[str],
) -> None:
    what = "sidecar" if item.sidecar else "object"
    if rec is None:
        report.add(
            Category.OBJECTS_NOT_IN_LEDGER,
            item.key,
            item.recording_uuid,
            f"{what} of a recording the ledger does not know",
        )
        return
    expected = rec.s3_key + SIDECAR_SUFFIX if item.sidecar and rec.s3_key else rec.s3_key
    if rec.state is State.ARCHIVED and item.key == expected:
        if not item.sidecar:  # an earlier version's sidecar is accepted, never required
            seen_objects.add(rec.recording_uuid)
        return
    if rec.state in _IN_FLIGHT:
        report.in_flight += 1
        return
    if rec.state is State.ARCHIVED:
        detail = f"{what} at another key than the ledger's {expected}"
    else:
        detail = f"{what} of a recording the ledger has as {rec.state.value}"
    report.add(Category.OBJECTS_NOT_ARCHIVED, item.key, rec.recording_uuid, detail)


def _pages(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while page := list(islice(iterator, size)):
        yield page
