"""Which object versions under the archive's prefix the custody record accounts for.

Object Lock keeps a version from being deleted or changed; it does not keep anyone
allowed ``s3:PutObject`` on the prefix from putting a *new* version at an archived
key, and a plain GET then answers the new one.  So both audits (``audit
verify-bucket`` from the log, ``audit reconcile`` from the ledger) list versions, not
keys (:meth:`~tenios_io.store.ArchiveStore.iter_versions`, streamed one key at a
time), and hold each key's versions to what the archive wrote there:

- **a recording's key** holds one version, the one its ``archived`` event (the
  ledger's row) names, and it is current.  Any other version is
  ``unlogged_version``; a current version that is not the archived one is
  ``current_version_not_archived`` (a GET answers bytes the log never saw); a delete
  marker is ``delete_marker`` (a GET answers 404 while it is current);
- **the custody log's latest checkpoint** is replaced by every run: each of its
  versions must be a copy of the numbered checkpoint of its size, perhaps with more
  witness cosignatures (:class:`CheckpointCopies`), anything else is ``unlogged_version``;
- **every other custody object** (under ``_custody/``: the log's hash tiles, entry
  bundles and numbered checkpoints, the custody manifests, the chain's JSON
  checkpoints, the ledger id) and the ``.json`` sidecars
  of earlier versions are written once, with ``If-None-Match: *``, and never
  replaced: the oldest version is the one written, each later version is
  ``unlogged_version`` and each delete marker ``delete_marker`` — a manifest or
  checkpoint overwritten is as suspicious as a recording;
- **the write probe** carries no evidence, and the bucket check writes it again
  after a delete: versions of the probe's size and delete markers over it are
  accounted for, a version of any other size is ``unlogged_version``.

Each finding names the key and the version ids and says what to do.  Keys and
version ids come from the bucket: whoever prints a finding escapes it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Final

from tenios_io.custody.layout import (
    CHAIN_CHECKPOINT_DIR,
    LATEST,
    LEDGER_ID_NAME,
    LOG_DIR,
    log_prefix,
)
from tenios_io.custody.signing import NoteError, split_note
from tenios_io.exceptions import TeniosArchiveError
from tenios_io.store import ArchiveStore, ObjectVersion
from tenios_io.store.keys import (
    MANIFEST_DIR,
    PROBE_BODY,
    SIDECAR_SUFFIX,
    parse_object_key,
    probe_key,
)

UNLOGGED_VERSION: Final = "unlogged_version"
CURRENT_VERSION_NOT_ARCHIVED: Final = "current_version_not_archived"
DELETE_MARKER: Final = "delete_marker"
_CHECKPOINT_MAX_BYTES = 64 * 1024
"""A checkpoint note larger than this is not one (a note is a few hundred bytes)."""


class KeyKind(Enum):
    """What a key under the prefix is, by its name alone."""

    RECORDING = "recording"
    SIDECAR = "sidecar"
    LATEST_CHECKPOINT = "latest checkpoint"
    CUSTODY = "custody object"
    PROBE = "probe"
    OTHER = "other"


@dataclass(frozen=True)
class KeyVersions:
    """Every version and delete marker of one key: the latest first, versions newest first."""

    key: str
    entries: tuple[ObjectVersion, ...]

    @property
    def current(self) -> ObjectVersion:
        """What a plain GET answers (a delete marker: 404)."""
        return next((e for e in self.entries if e.is_latest), self.entries[0])

    @property
    def live(self) -> bool:
        """Whether a plain GET finds an object (the current entry is not a delete marker)."""
        return not self.current.delete_marker

    @property
    def versions(self) -> list[ObjectVersion]:
        """The object versions, newest first (no delete markers)."""
        return [e for e in self.entries if not e.delete_marker]

    @property
    def markers(self) -> list[ObjectVersion]:
        return [e for e in self.entries if e.delete_marker]


def group_by_key(listing: Iterable[ObjectVersion]) -> Iterator[KeyVersions]:
    """A version listing (one key's entries consecutive) as one :class:`KeyVersions` per key."""
    for key, entries in itertools.groupby(listing, key=lambda entry: entry.key):
        yield KeyVersions(key, tuple(entries))


@dataclass(frozen=True)
class VersionFinding:
    """One version (or delete marker) the custody record does not account for."""

    check: str
    """``unlogged_version``, ``current_version_not_archived`` or ``delete_marker``."""
    key: str
    version_id: str | None
    detail: str
    """Names the version ids and says what to do."""


class VersionRules:
    """The rules above for one bucket and prefix; every method is pure."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        head = f"{prefix}/" if prefix else ""
        self._custody_dirs = tuple(
            f"{head}{name}/" for name in (LOG_DIR, MANIFEST_DIR, CHAIN_CHECKPOINT_DIR)
        )
        self._ledger_id = f"{head}{LEDGER_ID_NAME}"
        self._manifests, self._chain_checkpoints = self._custody_dirs[1:]
        self._latest = log_prefix(prefix) + LATEST
        self._probe = probe_key(prefix)

    def kind(self, key: str) -> KeyKind:
        if parse_object_key(self.prefix, key) is not None:
            return KeyKind.RECORDING
        if key == self._latest:
            return KeyKind.LATEST_CHECKPOINT
        if key.startswith(self._custody_dirs) or key == self._ledger_id:
            return KeyKind.CUSTODY
        if key == self._probe:
            return KeyKind.PROBE
        if key.endswith(SIDECAR_SUFFIX) and parse_object_key(
            self.prefix, key[: -len(SIDECAR_SUFFIX)]
        ):
            return KeyKind.SIDECAR
        return KeyKind.OTHER

    def custody_object(self, key: str) -> str:
        """What a key under ``_custody/`` holds, for a finding."""
        log = log_prefix(self.prefix)
        if key.startswith(log + "checkpoints/"):
            return "a signed checkpoint of the custody log"
        if key.startswith(log + "tile/"):
            return "a tile of the custody log"
        if key.startswith(self._manifests):
            return "a custody manifest"
        if key.startswith(self._chain_checkpoints):
            return "a custody chain checkpoint"
        if key == self._ledger_id:
            return "the ledger id"
        return "a custody object"

    def archived(
        self,
        group: KeyVersions,
        archived_version: str | None,
        recording_uuid: str,
        *,
        current_hash: tuple[str, int] | None = None,
    ) -> list[VersionFinding]:
        """A recording's key: only ``archived_version``, current, no delete marker.

        ``current_hash`` (``--deep``): the SHA-256 and size the current version's bytes
        hash to, when it is not the archived one.
        """
        found: list[VersionFinding] = []
        current = group.current
        for version in group.versions:
            if version.version_id == archived_version:
                continue
            found.append(
                VersionFinding(
                    UNLOGGED_VERSION,
                    group.key,
                    version.version_id,
                    f"{_described(version)} of recording {recording_uuid} was not written "
                    f"by the archive (it archived version {archived_version}); "
                    + self.removal(
                        group.key,
                        version,
                        "a GET answers the archived version again"
                        if version.is_latest
                        else "only the archived version remains",
                    ),
                )
            )
        if not current.delete_marker and current.version_id != archived_version:
            hashed = (
                f"; its bytes hash to SHA-256 {current_hash[0]} ({current_hash[1]:,} bytes)"
                if current_hash
                else ""
            )
            found.append(
                VersionFinding(
                    CURRENT_VERSION_NOT_ARCHIVED,
                    group.key,
                    current.version_id,
                    f"a GET of recording {recording_uuid} answers {_described(current)}, "
                    f"not the archived version {archived_version}{hashed}: "
                    + self.removal(group.key, current, "the archived version is current again"),
                )
            )
        found += self.marker_findings(group, f"recording {recording_uuid}")
        return found

    def written_once(self, group: KeyVersions, what: str) -> list[VersionFinding]:
        """A key written once and never replaced: its oldest version is the one."""
        versions = group.versions
        found = [
            VersionFinding(
                UNLOGGED_VERSION,
                group.key,
                version.version_id,
                f"{_described(version)} of {what}, which is written once and never "
                f"replaced (first version {versions[-1].version_id}); "
                + self.removal(group.key, version, "the first version is current again"),
            )
            for version in versions[:-1]
        ]
        return found + self.marker_findings(group, what)

    def probe(self, group: KeyVersions) -> list[VersionFinding]:
        """The write probe: any number of versions of its own size; delete markers are fine."""
        return [
            VersionFinding(
                UNLOGGED_VERSION,
                group.key,
                version.version_id,
                f"{_described(version)} of the write probe, which holds "
                f"{len(PROBE_BODY)} bytes; " + self.removal(group.key, version, "it is gone"),
            )
            for version in group.versions
            if version.size != len(PROBE_BODY)
        ]

    def hidden(self, group: KeyVersions) -> list[VersionFinding]:
        """A key nothing accounts for whose versions are hidden under a delete marker."""
        return [
            VersionFinding(
                UNLOGGED_VERSION,
                group.key,
                version.version_id,
                f"{_described(version)}, hidden under a delete marker: nothing in the custody "
                "record names this key; "
                + self.removal(group.key, version, "nothing unaccounted for remains"),
            )
            for version in group.versions
        ]

    def marker_findings(self, group: KeyVersions, what: str) -> list[VersionFinding]:
        """Every delete marker over a key the custody record accounts for."""
        found = []
        for marker in group.markers:
            if marker.is_latest:
                effect = f"it hides {what}: a GET answers 404"
            else:
                effect = f"{what} was deleted and written again since"
            found.append(
                VersionFinding(
                    DELETE_MARKER,
                    group.key,
                    marker.version_id,
                    f"delete marker {marker.version_id} ({_when(marker)}): {effect}; find who "
                    "deleted it (CloudTrail, server access logs), then remove the marker: "
                    f"aws s3api delete-object --bucket {self.bucket} --key {group.key} "
                    f"--version-id {marker.version_id}",
                )
            )
        return found

    def removal(self, key: str, version: ObjectVersion, then: str) -> str:
        """What to do about a version nothing accounts for."""
        return (
            "find who wrote it (CloudTrail, server access logs), keep a copy as evidence, "
            f"then delete that version so {then}: aws s3api delete-object --bucket "
            f"{self.bucket} --key {key} --version-id {version.version_id}"
        )


class CheckpointCopies:
    """Whether each version of the log's latest checkpoint is a numbered checkpoint.

    Every run writes ``checkpoints/<size>`` once and then points ``checkpoint`` at the
    same bytes, so each version of ``checkpoint`` is byte for byte the numbered
    checkpoint of its size — or, when a witness cosigned that checkpoint after it was
    written (it was down, then a later run submitted it again), the same signed note
    with every signature line of the numbered one and more cosignature lines.  The
    numbered checkpoints' listing (size and ETag) decides
    most versions without a download; the others (an ETag that is no MD5, under
    SSE-KMS) are downloaded and compared with the numbered checkpoint they name.
    """

    def __init__(self, store: ArchiveStore) -> None:
        self._store = store
        self._numbered = log_prefix(store.prefix) + "checkpoints/"
        self._listed: set[tuple[int, str]] | None = None

    def findings(self, rules: VersionRules, group: KeyVersions) -> list[VersionFinding]:
        found = [
            VersionFinding(
                UNLOGGED_VERSION,
                group.key,
                version.version_id,
                f"{_described(version)} of the latest checkpoint is {problem}; "
                + rules.removal(group.key, version, "only checkpoints the log signed remain"),
            )
            for version in group.versions
            if (problem := self._problem(version)) is not None
        ]
        return found + rules.marker_findings(group, "the latest checkpoint")

    def _problem(self, version: ObjectVersion) -> str | None:
        if self._listed is None:
            self._listed = {
                (obj.size, obj.etag) for obj in self._store.iter_objects(self._numbered)
            }
        if (version.size, version.etag) in self._listed:
            return None
        if version.size > _CHECKPOINT_MAX_BYTES:
            return "too large to be a checkpoint"
        buffer = io.BytesIO()
        try:
            self._store.download(version.key, buffer, version_id=version.version_id)
        except TeniosArchiveError as exc:
            return f"unreadable ({exc})"
        body = buffer.getvalue()
        lines = body.split(b"\n", 2)
        size = lines[1] if len(lines) > 2 else b""
        if not size.isdigit():
            return "not a checkpoint note"
        numbered = self._store.read_document(f"{self._numbered}{int(size):020d}")
        if numbered is None or not _cosigned_copy(numbered[0], body):
            return (
                f"not the numbered checkpoint of its size {int(size)} (nor that signed note "
                "with more witness cosignatures)"
            )
        return None


def _cosigned_copy(numbered: bytes, copy: bytes) -> bool:
    """Whether ``copy`` is ``numbered``: the same signed text, every signature line of
    ``numbered`` and perhaps more (the witnesses' cosignatures added by a later run)."""
    if copy == numbered:
        return True
    try:
        text, signatures = split_note(numbered)
        copy_text, copy_signatures = split_note(copy)
    except NoteError:
        return False
    return text == copy_text and set(signatures) <= set(copy_signatures)


def _described(version: ObjectVersion) -> str:
    return f"version {version.version_id} ({version.size:,} bytes, {_when(version)})"


def _when(entry: ObjectVersion) -> str:
    if entry.last_modified is None:
        return "written at an unknown time"
    return f"written {entry.last_modified:%Y-%m-%d %H:%M:%S %Z}".rstrip()


__all__ = [
    "CURRENT_VERSION_NOT_ARCHIVED",
    "DELETE_MARKER",
    "UNLOGGED_VERSION",
    "CheckpointCopies",
    "KeyKind",
    "KeyVersions",
    "VersionFinding",
    "VersionRules",
    "group_by_key",
]
