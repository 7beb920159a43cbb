"""Verify the archive from the bucket and a verifier key alone: `audit verify-bucket`.

No database and no operator settings: everything comes from the custody log in the
bucket.  What is checked, in order:

1. **signatures** — every checkpoint (``checkpoints/<size>`` and the latest) is a
   note signed by the given key, for this log's origin and its own size — or, after
   a logged key rotation (``key_rotated``, signed in by the key it rotates from), by
   the key rotated to;
2. **the tree** — the entry bundles are re-hashed into the tree, compared tile by
   tile with the hash tiles in the bucket, and the tree of every checkpoint's size
   must have exactly that checkpoint's root;
3. **consistency** — each checkpoint is consistent with the one before (an RFC 6962
   consistency proof computed from the tiles): history was only ever appended to;
4. **objects** — every recording the log says is archived (its ``archived`` event,
   not purged since) exists at that key and version with the logged SHA-256 and size
   in its metadata (``deep``: the bytes re-hashed);
5. **manifests** — every custody manifest (one per archived batch, under
   ``_custody/manifests/``): each line's custody events are entries of the signed
   log, and its recording's key, version, SHA-256 and size are what the log's
   ``archived`` event says (a recording purged since is no finding);
6. **every object version** — one listing of the versions under the prefix
   (ListObjectVersions, streamed key by key; :mod:`tenios_io.custody.versions` holds
   the rules): a version of an archived recording's key other than the logged one
   (``unlogged_version``), a current version that is not the archived one
   (``current_version_not_archived``; ``deep``: its bytes re-hashed too), a delete
   marker over an archived key or a custody object (``delete_marker``), a second
   version of a custody object written once (tiles, bundles, checkpoints, manifests,
   the ledger id) or a version of the latest checkpoint that is no numbered one
   (``unlogged_version``), and keys that no log entry accounts for (``unaccounted``).

A manifest written after the newest signed checkpoint names events the signed log
does not hold yet: that is a finding until the next run signs a checkpoint.

With a witness policy (``--witness KEY … [--quorum K]``), the newest checkpoint (the
latest ``checkpoint`` object's copy, which carries the cosignatures collected after it
was numbered) must carry valid cosignatures of K of those witnesses (``witness``);
older checkpoints without them are listed, not findings.  With a checkpoint the
auditor kept (``--since``), the newest checkpoint must extend it: a consistency proof
from the tiles (``since``) — a log rebuilt and re-signed by the operator fails it.

**The unsigned era.** An archive started before it had a signing key holds unsigned
numbered checkpoints (written without TENIOS_CUSTODY_KEY_FILE), under Object Lock for
good.  Those older than the first signed checkpoint are history, not findings: they are
reported once (:attr:`BucketReport.unsigned_era`), their roots are still compared with
the tree, and the signed checkpoints after them cover every entry from the first, so
the signed log verifies clean.  An unsigned checkpoint after the first signed one (a
key removed later) is a finding, as is an archive with no signed checkpoint at all.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tenios_io.custody import merkle, signing
from tenios_io.custody.chain import canonical_entry_digest, canonical_json
from tenios_io.custody.checkpoints import CheckpointError, LogCheckpoint, open_checkpoint
from tenios_io.custody.cosignature import PolicyResult, WitnessPolicy
from tenios_io.custody.layout import (
    LATEST,
    LOG_DIR,
    checkpoint_name,
    default_origin,
    log_prefix,
    parse_entry,
)
from tenios_io.custody.rotation import Rotation, parse_rotation
from tenios_io.custody.tree import LogFiles, TreeEdge, tree_reader
from tenios_io.custody.versions import (
    CheckpointCopies,
    KeyKind,
    KeyVersions,
    VersionRules,
    group_by_key,
)
from tenios_io.exceptions import TeniosArchiveError
from tenios_io.store import ArchiveStore
from tenios_io.store.keys import SIDECAR_SUFFIX, manifest_prefix

_MANIFEST_MAX_BYTES = 64 * 1024 * 1024
"""A custody manifest larger than this is not one (a batch of 500 lines is ~300 kB)."""

W = merkle.TILE_WIDTH
#: (phase, done, total) — total None while it is not known yet.
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold."""

    check: str
    """``signature``, ``checkpoint``, ``witness``, ``since``, ``tree``, ``consistency``,
    ``entry``, ``object``, ``manifest``, ``unaccounted``, ``unlogged_version``,
    ``current_version_not_archived``, ``delete_marker``."""
    subject: str
    detail: str


@dataclass(frozen=True)
class LoggedObject:
    """What the log says about one archived recording."""

    recording_uuid: str
    key: str
    version_id: str | None
    sha256: str
    size: int
    leaf: int


@dataclass
class _LogIndex:
    """What the entries say: the archived objects (purged ones removed), the recordings
    purged, and every entry's digest (custody.entry_digest, as manifests name them)."""

    objects: dict[str, LoggedObject] = field(default_factory=dict)
    purged: set[str] = field(default_factory=set)
    digests: set[bytes] = field(default_factory=set)
    rotations: list[Rotation] = field(default_factory=list)


@dataclass
class BucketReport:
    """What :func:`verify_bucket` found."""

    checkpoints: list[LogCheckpoint] = field(default_factory=list)
    unsigned_era: list[LogCheckpoint] = field(default_factory=list)
    """Unsigned checkpoints older than the first signed one: history, not findings."""
    tree_size: int = 0
    objects_checked: int = 0
    objects_listed: int = 0
    """Keys a plain listing shows (their current entry is an object)."""
    versions_listed: int = 0
    """Object versions and delete markers under the prefix."""
    manifests_checked: int = 0
    manifest_lines: int = 0
    findings: list[Finding] = field(default_factory=list)
    rotations: list[Rotation] = field(default_factory=list)
    """The logged key rotations followed from the given key, oldest first."""
    signed_with: dict[int, signing.Verifier] = field(default_factory=dict, repr=False)
    """The key each verified numbered checkpoint (by size) was signed with."""
    newest_note: bytes | None = None
    """The newest checkpoint as signed note, with every cosignature the bucket has."""
    witness: PolicyResult | None = None
    """The witness policy's verdict on the newest checkpoint (with a policy)."""
    unwitnessed: list[int] = field(default_factory=list)
    """Sizes of the numbered checkpoints that lack the policy's quorum (with a policy)."""

    @property
    def ok(self) -> bool:
        return not self.findings and bool(self.checkpoints)


def _nothing(_phase: str, _done: int, _total: int | None) -> None:
    return None


def verify_bucket(
    store: ArchiveStore,
    verifier: signing.Verifier,
    *,
    deep: bool = False,
    progress: Progress = _nothing,
    policy: WitnessPolicy | None = None,
    since: bytes | None = None,
) -> BucketReport:
    """Run every check; never raises for what it finds (the store's errors propagate).

    ``policy``: the witnesses whose cosignatures the newest checkpoint needs.
    ``since``: a checkpoint note the auditor kept, which the log must extend.
    """
    report = BucketReport()
    files = LogFiles(store, log_prefix(store.prefix))
    origin = default_origin(store.bucket, store.prefix)
    checkpoints = _signed_checkpoints(files, verifier, origin, report)
    if not checkpoints:
        report.findings.append(
            Finding("checkpoint", files.prefix, "no checkpoint signed by this key was found")
        )
        return report
    report.checkpoints = checkpoints
    size = checkpoints[-1].size
    report.tree_size = size
    report.newest_note = _newest_note(files, checkpoints[-1])
    if policy is not None:
        _check_witnesses(files, checkpoints, report.newest_note, policy, report)
    index = _check_tree(files, checkpoints, report, progress)
    if index is not None:
        _check_retired_keys(files, checkpoints, index.rotations, verifier, report)
    _check_consistency(files, checkpoints, report)
    if since is not None:
        keys = [verifier, *report.signed_with.values()]  # the pinned one may predate a rotation
        _check_since(files, keys, origin, checkpoints[-1], since, report)
    if index is not None:
        _check_objects(store, index.objects, deep, report, progress)
        _check_manifests(store, index, report, progress)
        _check_versions(store, index.objects, deep, report, progress)
    return report


def _signed_checkpoints(
    files: LogFiles, verifier: signing.Verifier, origin: str, report: BucketReport
) -> list[LogCheckpoint]:
    """Every numbered checkpoint that verifies, by size; findings for the others.

    They are opened in size order with ``verifier`` and, past a logged key rotation
    (:mod:`tenios_io.custody.rotation`) that the current key's last checkpoint holds,
    with the key it rotated to.
    """
    good: dict[int, LogCheckpoint] = {}
    unsigned: list[tuple[int, str, bytes, str]] = []
    """Unsigned numbered checkpoints (no signature block): judged once the first signed
    one is known — before it they are the unsigned era, history, not findings."""
    numbered: list[tuple[int, str, bytes]] = []
    for obj in files.store.iter_objects(files.key("checkpoints/")):
        name = obj.key[len(files.prefix) :]
        note = files.read(name)
        if note is None:
            continue
        try:
            size = open_checkpoint(note, None).size
        except CheckpointError as exc:
            report.findings.append(Finding("signature", files.key(name), str(exc)))
            continue
        numbered.append((size, name, note))
    key = verifier
    for size, name, note in sorted(numbered):
        checkpoint = _open(files, name, note, key, origin)
        if isinstance(checkpoint, str) and good:
            rotation = _rotation_from(files, key, max(good))
            if rotation is not None:
                rotated = _open(files, name, note, rotation.new, origin)
                if not isinstance(rotated, str):
                    key, checkpoint = rotation.new, rotated
                    report.rotations.append(rotation)
        if isinstance(checkpoint, str) and b"\n\n" not in note:
            unsigned.append((size, name, note, checkpoint))
            continue
        if isinstance(checkpoint, str):
            for retired in report.rotations:
                if not isinstance(_open(files, name, note, retired.old, origin), str):
                    checkpoint = (
                        f"signed by {retired.old.name}+{retired.old.hash.hex()}, a key the log "
                        f"had rotated away from (at event {retired.seq})"
                    )
            report.findings.append(Finding("signature", files.key(name), checkpoint))
            continue
        if name != checkpoint_name(checkpoint.size):
            report.findings.append(
                Finding("checkpoint", files.key(name), f"signs size {size}, not its name's")
            )
            continue
        good[checkpoint.size] = checkpoint
        report.signed_with[checkpoint.size] = key
    _judge_unsigned(files, unsigned, min(good) if good else None, origin, report)
    note = files.read(LATEST)
    latest = _open(files, LATEST, note, key, origin) if note is not None else None
    if isinstance(latest, str):
        report.findings.append(Finding("signature", files.key(LATEST), latest))
    elif latest is not None:
        newest = good.get(max(good)) if good else None
        if newest is None or (newest.size, newest.root) != (latest.size, latest.root):
            report.findings.append(
                Finding(
                    "checkpoint",
                    files.key(LATEST),
                    f"the latest checkpoint (size {latest.size}) is not the newest numbered "
                    f"one ({newest.size if newest else 'none'})",
                )
            )
    else:
        report.findings.append(Finding("checkpoint", files.key(LATEST), "missing"))
    return [good[size] for size in sorted(good)]


def _judge_unsigned(
    files: LogFiles,
    unsigned: list[tuple[int, str, bytes, str]],
    first_signed: int | None,
    origin: str,
    report: BucketReport,
) -> None:
    """Unsigned numbered checkpoints before the first signed one are the unsigned era
    (history: reported once, their roots still compared with the tree); after it, or
    with no signed checkpoint at all, each is a ``signature`` finding."""
    for size, name, note, why in unsigned:
        era = open_checkpoint(note, None)
        if first_signed is not None and size < first_signed and era.origin == origin:
            if name == checkpoint_name(size):
                report.unsigned_era.append(era)
                continue
        if first_signed is not None and size > first_signed:
            why = (
                f"unsigned, written after the signed checkpoint {first_signed} (a run "
                "without TENIOS_CUSTODY_KEY_FILE)"
            )
        report.findings.append(Finding("signature", files.key(name), why))


def _rotation_from(files: LogFiles, key: signing.Verifier, size: int) -> Rotation | None:
    """The newest ``key_rotated`` event away from ``key`` among the first ``size``
    entries (the tree ``key`` signed last), searched from the newest bundle back:
    `audit rotate-key` signs it into a checkpoint right away.  The entries are
    checked against the signed roots by the tree step."""
    wanted = str(key)
    try:
        for index in range((size + W - 1) // W - 1, -1, -1):
            entries = files.bundle(index, min(W, size - index * W))
            for entry in reversed(entries):
                try:
                    rotation = parse_rotation(parse_entry(entry))
                except ValueError:
                    continue
                if rotation is not None and str(rotation.old) == wanted:
                    return rotation
    except merkle.ProofError:
        return None  # the tree step names the unreadable bundle
    return None


def _open(
    files: LogFiles, name: str, note: bytes, verifier: signing.Verifier, origin: str
) -> LogCheckpoint | str:
    """The checkpoint ``verifier`` signed for ``origin``, or why not."""
    try:
        checkpoint = open_checkpoint(note, verifier)
    except CheckpointError as exc:
        return str(exc)
    if checkpoint.origin != origin:
        return f"signed for origin {checkpoint.origin!r}, this log is {origin!r}"
    return checkpoint


def _newest_note(files: LogFiles, newest: LogCheckpoint) -> bytes:
    """The newest checkpoint as the latest ``checkpoint`` object holds it, when that is
    the same signed note with (perhaps) more cosignatures; else the numbered one."""
    latest = files.read(LATEST)
    if latest is None or latest == newest.note:
        return newest.note
    try:
        text, signatures = signing.split_note(latest)
        numbered_text, numbered_signatures = signing.split_note(newest.note)
    except signing.NoteError:
        return newest.note
    if text == numbered_text and set(numbered_signatures) <= set(signatures):
        return latest
    return newest.note


def _check_witnesses(
    files: LogFiles,
    checkpoints: list[LogCheckpoint],
    newest_note: bytes,
    policy: WitnessPolicy,
    report: BucketReport,
) -> None:
    """The newest checkpoint has the policy's cosignatures; list older ones without."""
    newest = checkpoints[-1]
    for checkpoint in checkpoints:
        note = newest_note if checkpoint is newest else checkpoint.note
        key = files.key(LATEST if checkpoint is newest else checkpoint_name(checkpoint.size))
        try:
            result = policy.check(note)
        except signing.NoteError as exc:
            report.findings.append(Finding("witness", key, f"{exc}: do not trust it"))
            continue
        if checkpoint is newest:
            report.witness = result
            if not result.satisfied:
                report.findings.append(
                    Finding(
                        "witness",
                        key,
                        f"the newest checkpoint (size {newest.size}) has {result.describe()}: "
                        "it is not witnessed (a witness was down: the next run submits it "
                        "again; refused: the log may have forked)",
                    )
                )
        if not result.satisfied:
            report.unwitnessed.append(checkpoint.size)


def _check_since(
    files: LogFiles,
    keys: list[signing.Verifier],
    origin: str,
    newest: LogCheckpoint,
    since: bytes,
    report: BucketReport,
) -> None:
    """The newest checkpoint extends the one the auditor pinned (``--since``), which
    one of the log's keys (the given one, or one it was rotated to) signed."""
    pinned, problem = None, "no key given"
    for key in dict.fromkeys(keys):
        try:
            pinned = open_checkpoint(since, key)
            break
        except CheckpointError as exc:
            problem = str(exc)
    if pinned is None:
        report.findings.append(
            Finding("since", "--since", f"the pinned checkpoint does not verify: {problem}")
        )
        return
    what = f"the checkpoint you pinned (size {pinned.size}, root {pinned.root_b64})"
    if pinned.origin != origin:
        report.findings.append(
            Finding("since", "--since", f"{what} is of origin {pinned.origin!r}, not {origin!r}")
        )
        return
    if pinned.size > newest.size:
        report.findings.append(
            Finding(
                "since",
                files.key(LATEST),
                f"the log holds {newest.size} events, fewer than {what}: it was rolled back "
                "or rebuilt",
            )
        )
        return
    try:
        proof = merkle.consistency_proof(tree_reader(files, newest.size), pinned.size, newest.size)
        merkle.verify_consistency(pinned.size, newest.size, pinned.root, newest.root, proof)
    except merkle.ProofError as exc:
        report.findings.append(
            Finding(
                "since",
                files.key(checkpoint_name(newest.size)),
                f"the current log (size {newest.size}) does not extend {what}: {exc}. The "
                "history you saw was rewritten: keep both checkpoints as evidence",
            )
        )


def _check_tree(
    files: LogFiles,
    checkpoints: list[LogCheckpoint],
    report: BucketReport,
    progress: Progress,
) -> _LogIndex | None:
    """Re-hash the entry bundles into the tree; compare tiles and every checkpoint's root.

    Returns what the entries say (None if the entries are unreadable).
    """
    size = checkpoints[-1].size
    # The unsigned era's roots too: its checkpoints must be states of the same tree.
    roots = {c.size: c.root for c in [*report.unsigned_era, *checkpoints]}
    edge = TreeEdge()
    logged = _LogIndex()
    bad_tiles: list[str] = []

    def compare(path: str, body: bytes) -> None:
        if path.startswith("tile/entries/"):
            return  # the bundles are what is being hashed
        found = files.read(path)
        if found != body:
            bad_tiles.append(path)
            what = "missing" if found is None else "does not match the entries' hashes"
            report.findings.append(Finding("tree", files.key(path), f"hash tile {what}"))

    try:
        for index in range(0, (size + W - 1) // W):
            width = min(W, size - index * W)
            entries = files.bundle(index, width)
            for offset, entry in enumerate(entries):
                leaf = index * W + offset
                _read_entry(entry, leaf, logged, report)
                edge.append(entry, compare)
                if edge.size in roots and edge.root() != roots[edge.size]:
                    report.findings.append(
                        Finding(
                            "tree",
                            files.key(checkpoint_name(edge.size)),
                            f"the entries do not hash to the root signed for size {edge.size} "
                            "(an entry bundle was edited, or history rewritten after it)",
                        )
                    )
            progress("tree", edge.size, size)
    except merkle.ProofError as exc:
        report.findings.append(Finding("tree", files.prefix, str(exc)))
        return None
    for path, body in edge.partials():
        compare(path, body)
    return logged


def _read_entry(entry: bytes, leaf: int, index: _LogIndex, report: BucketReport) -> None:
    try:
        event = parse_entry(entry)
    except ValueError as exc:
        report.findings.append(Finding("entry", f"leaf {leaf}", f"not a custody event ({exc})"))
        return
    if event["seq"] != leaf + 1:
        report.findings.append(
            Finding("entry", f"leaf {leaf}", f"carries sequence number {event['seq']}")
        )
    uuid = event["recording_uuid"]
    details: dict[str, Any] = event["details"]
    index.digests.add(
        bytes.fromhex(
            canonical_entry_digest(
                uuid, event["event"], event["actor"], event["occurred_at"], canonical_json(details)
            )
        )
    )
    objects = index.objects
    if event["event"] == "archived" and uuid and details.get("s3_key"):
        index.purged.discard(uuid)
        objects[uuid] = LoggedObject(
            uuid,
            str(details["s3_key"]),
            details.get("s3_version_id"),
            str(details.get("sha256")),
            int(details.get("size_bytes") or 0),
            leaf,
        )
    elif event["event"] == "purged" and uuid:
        objects.pop(uuid, None)
        index.purged.add(uuid)
    elif (rotation := parse_rotation(event)) is not None:
        index.rotations.append(rotation)


def _check_retired_keys(
    files: LogFiles,
    checkpoints: list[LogCheckpoint],
    rotations: list[Rotation],
    verifier: signing.Verifier,
    report: BucketReport,
) -> None:
    """A key rotated away from signs nothing after the checkpoint that logged its
    rotation: a checkpoint signed by it later is a ``signature`` finding (whoever
    still holds the old key cannot extend the log)."""
    current = str(verifier)
    for checkpoint in checkpoints:
        used = report.signed_with.get(checkpoint.size)
        if used is not None and str(used) != current:
            report.findings.append(
                Finding(
                    "signature",
                    files.key(checkpoint_name(checkpoint.size)),
                    f"signed by {used.name}+{used.hash.hex()}, a key the log had rotated "
                    "away from before it",  # when no later checkpoint is signed by the new key
                )
            )
        for rotation in rotations:
            if rotation.seq <= checkpoint.size and str(rotation.old) == current:
                current = str(rotation.new)


def _check_consistency(
    files: LogFiles, checkpoints: list[LogCheckpoint], report: BucketReport
) -> None:
    size = checkpoints[-1].size
    try:
        reader = tree_reader(files, size)
        for old, new in itertools.pairwise(checkpoints):
            proof = merkle.consistency_proof(reader, old.size, new.size)
            try:
                merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
            except merkle.ProofError as exc:
                report.findings.append(
                    Finding(
                        "consistency",
                        files.key(checkpoint_name(new.size)),
                        f"does not extend checkpoint {old.size}: {exc} (history rewritten)",
                    )
                )
    except merkle.ProofError as exc:
        report.findings.append(Finding("consistency", files.prefix, str(exc)))


def _check_objects(
    store: ArchiveStore,
    objects: dict[str, LoggedObject],
    deep: bool,
    report: BucketReport,
    progress: Progress,
) -> None:
    for done, obj in enumerate(objects.values(), start=1):
        report.objects_checked += 1
        for problem in _object_problems(store, obj, deep):
            report.findings.append(Finding("object", obj.key, f"{obj.recording_uuid}: {problem}"))
        progress("objects", done, len(objects))


def _object_problems(store: ArchiveStore, obj: LoggedObject, deep: bool) -> Iterator[str]:
    try:
        info = store.head(obj.key, obj.version_id)
    except TeniosArchiveError as exc:
        yield f"cannot be read ({exc})"
        return
    if info is None:
        yield f"deleted (the log's leaf {obj.leaf} says it was archived)"
        return
    if info.metadata.get("sha256") != obj.sha256:
        yield f"metadata SHA-256 {info.metadata.get('sha256')} != logged {obj.sha256}"
    if info.sha256 is not None and info.sha256 != obj.sha256:
        yield f"S3 checksum SHA-256 {info.sha256} != logged {obj.sha256}"
    if info.size != obj.size:
        yield f"size {info.size} != logged {obj.size}"
    if deep:
        try:
            sha256, size = store.hash_object(obj.key, version_id=obj.version_id)
        except TeniosArchiveError as exc:
            yield f"cannot be downloaded ({exc})"
            return
        if (sha256, size) != (obj.sha256, obj.size):
            yield f"bytes hash to {sha256} ({size} bytes), the log says {obj.sha256}"


def _check_manifests(
    store: ArchiveStore, index: _LogIndex, report: BucketReport, progress: Progress
) -> None:
    """Every manifest line's events are in the log and its object is the logged one."""
    for listed in store.iter_objects(manifest_prefix(store.prefix)):
        report.manifests_checked += 1
        key = listed.key
        buffer = io.BytesIO()
        try:
            if listed.size > _MANIFEST_MAX_BYTES:
                raise ValueError(f"{listed.size} bytes is larger than a manifest can be")
            store.download(key, buffer)
            lines = buffer.getvalue().decode("ascii").splitlines()
        except (TeniosArchiveError, ValueError) as exc:
            report.findings.append(Finding("manifest", key, f"cannot be read ({exc})"))
            continue
        for number, text in enumerate(lines, start=1):
            report.manifest_lines += 1
            for problem in _manifest_line_problems(text, index):
                report.findings.append(Finding("manifest", key, f"line {number}: {problem}"))
        progress("manifests", report.manifests_checked, None)


def _manifest_line_problems(text: str, index: _LogIndex) -> Iterator[str]:
    try:
        line = json.loads(text)
        uuid = str(line["recording_uuid"])
        events = [bytes.fromhex(str(digest)) for digest in line["events"]]
        named = (line["key"], line["version_id"], line["sha256"], line["size"])
    except (ValueError, KeyError, TypeError) as exc:
        yield f"not a manifest line ({exc})"
        return
    missing = [digest.hex() for digest in events if digest not in index.digests]
    if missing:
        yield (
            f"{uuid}: {len(missing)} of its {len(events)} custody event(s) are not in the "
            f"signed log (first {missing[0]}); a run that stopped before its checkpoint "
            "leaves them out until the next one signs"
        )
    logged = index.objects.get(uuid)
    if logged is None:
        if uuid not in index.purged:
            yield f"{uuid}: the signed log has no archived event for it"
        return
    if named != (logged.key, logged.version_id, logged.sha256, logged.size):
        yield (
            f"{uuid}: names {named[0]} version {named[1]} SHA-256 {named[2]} ({named[3]} "
            f"bytes), the log says {logged.key} version {logged.version_id} SHA-256 "
            f"{logged.sha256} ({logged.size} bytes)"
        )


def _check_versions(
    store: ArchiveStore,
    objects: dict[str, LoggedObject],
    deep: bool,
    report: BucketReport,
    progress: Progress,
) -> None:
    """Every version and delete marker under the prefix, one key at a time."""
    rules = VersionRules(store.bucket, store.prefix)
    copies = CheckpointCopies(store)
    by_key = {obj.key: obj for obj in objects.values()}
    for group in group_by_key(store.iter_versions()):
        report.versions_listed += len(group.entries)
        if group.live:
            report.objects_listed += 1
            if report.objects_listed % 1000 == 0:
                progress("listing", report.objects_listed, None)
        for check, detail in _key_findings(store, rules, copies, by_key, group, deep):
            report.findings.append(Finding(check, group.key, detail))


def _key_findings(
    store: ArchiveStore,
    rules: VersionRules,
    copies: CheckpointCopies,
    by_key: dict[str, LoggedObject],
    group: KeyVersions,
    deep: bool,
) -> Iterator[tuple[str, str]]:
    key = group.key
    kind = rules.kind(key)
    logged = by_key.get(key)
    if logged is not None:
        found = rules.archived(
            group,
            logged.version_id,
            logged.recording_uuid,
            current_hash=_current_hash(store, group, logged) if deep else None,
        )
    elif kind is KeyKind.SIDECAR and (owner := by_key.get(key[: -len(SIDECAR_SUFFIX)])):
        found = rules.written_once(group, f"the sidecar of recording {owner.recording_uuid}")
    elif kind is KeyKind.LATEST_CHECKPOINT:
        found = copies.findings(rules, group)
    elif kind is KeyKind.CUSTODY:
        found = rules.written_once(group, rules.custody_object(key))
    elif kind is KeyKind.PROBE:
        found = rules.probe(group)
    elif group.live:
        yield "unaccounted", "no custody log entry accounts for this object"
        return
    else:
        found = rules.hidden(group)
    for finding in found:
        yield finding.check, finding.detail


def _current_hash(
    store: ArchiveStore, group: KeyVersions, logged: LoggedObject
) -> tuple[str, int] | None:
    """What a GET's bytes hash to, when the current version is not the logged one."""
    current = group.current
    if current.delete_marker or current.version_id == logged.version_id:
        return None  # the object check hashes the logged version
    try:
        return store.hash_object(group.key, version_id=current.version_id)
    except TeniosArchiveError:
        return None


__all__ = ["LOG_DIR", "BucketReport", "Finding", "LoggedObject", "verify_bucket"]
