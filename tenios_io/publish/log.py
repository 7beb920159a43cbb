"""Extend the custody log in the bucket to the ledger's chain head and sign a checkpoint.

Called when a run writes its checkpoint (after it has integrated everything it
wrote, see ``tenios_io.publish.checkpoints.write_checkpoint``).  Steps:

1. read the latest checkpoint and the tree's right edge from the bucket and check
   that the edge hashes to the checkpoint's root (never build on tampered tiles);
2. check that the log's last entry is still the ledger's event of that number (the
   ledger was not rewritten under the log);
3. append the ledger's newer events, writing each full entry bundle and tile once
   (``If-None-Match: *``, Object Lock where the bucket has it), then the partial
   ones under their ``.p/W`` names;
4. with witnesses configured, submit the signed checkpoint to each and append the
   cosignatures they answer (``tenios_io.publish.witnessing``);
5. write the checkpoint under ``checkpoints/<size>`` (kept) and replace ``checkpoint``
   (the latest) with a conditional write, never by a smaller tree; when the numbered
   checkpoint exists already (a run with nothing new), it stays as written and only
   ``checkpoint`` gets the same signed note with more cosignature lines.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from tenios_io.custody import merkle, signing
from tenios_io.custody.chain import MAX_ENTRY_BYTES
from tenios_io.custody.checkpoints import (
    CheckpointError,
    LogCheckpoint,
    make_checkpoint,
    open_checkpoint,
)
from tenios_io.custody.cosignature import add_signatures, verify_cosignatures
from tenios_io.custody.layout import (
    LATEST,
    checkpoint_name,
    default_origin,
    event_entry,
    log_prefix,
)
from tenios_io.custody.rotation import ROTATION_EVENT, Rotation, log_signer, parse_rotation
from tenios_io.custody.tree import LogFiles, TreeEdge, load_edge, tree_reader
from tenios_io.exceptions import ArchiveConflict, ChainBroken, ConfigError, StoreUnavailable
from tenios_io.ledger import Ledger
from tenios_io.publish.witnessing import WitnessReport, WitnessSession
from tenios_io.store import ArchiveStore

log = logging.getLogger("tenios_io.custodylog")
CONTENT_TYPE = "text/plain; charset=utf-8"
_LATEST_TRIES = 10
TILE_TYPE = "application/octet-stream"
#: Tiles and bundles written at once.  Each write is a PUT and its read-back HEAD, one
#: round trip apiece: one at a time, a bucket 25 ms away takes 50 ms per object, i.e.
#: 200 s for the 7,800 objects of a million events; 16 at once make it 13 s.
MAX_WRITERS = 16


@dataclass(frozen=True)
class Published:
    """What :func:`publish_log` left in the bucket."""

    checkpoint: LogCheckpoint
    key: str
    """The numbered checkpoint's key."""
    previous_size: int
    objects_written: int
    witness: WitnessReport | None = None
    """What the witnesses answered (None: no witnesses configured, or unsigned)."""


def publish_log(
    ledger: Ledger,
    store: ArchiveStore,
    signer: signing.Signer | None,
    *,
    head_seq: int,
    witnesses: WitnessSession | None = None,
) -> Published:
    """Extend the log to event ``head_seq`` (verified by the caller) and sign its checkpoint.

    With ``witnesses``, the signed checkpoint goes to each witness before it is written
    (:mod:`tenios_io.publish.witnessing`), and is written with their cosignatures.

    ChainBroken when the bucket's log and the ledger disagree; the store's errors when
    the bucket refuses.
    """
    files = LogFiles(store, log_prefix(store.prefix))
    origin = default_origin(store.bucket, store.prefix)
    latest = files.read(LATEST)
    old_size, old_root = 0, merkle.EMPTY_ROOT
    if latest is not None:
        try:
            current = open_checkpoint(latest, None)
        except CheckpointError as exc:
            raise ChainBroken(
                f"{files.key(LATEST)} is not a checkpoint ({exc})", event_id=None
            ) from None
        old_size, old_root = current.size, current.root
    try:
        edge = load_edge(files, old_size)
        if edge.root() != old_root:
            raise merkle.ProofError("its tiles do not hash to the latest checkpoint's root")
    except merkle.ProofError as exc:
        raise ChainBroken(
            f"the custody log under {files.prefix} cannot be extended: {exc} "
            "(run `tenios-archive audit verify-bucket`)",
            event_id=None,
        ) from None
    if head_seq < old_size:
        raise ChainBroken(
            f"the custody log in the bucket holds {old_size} events but the ledger only "
            f"{head_seq}: events were deleted from the ledger",
            event_id=head_seq,
        )
    _check_last_entry(ledger, edge, files, old_size)
    check_signing_key(ledger, store, signer, latest=latest)
    with _TileWriter(store, files, _retain_until(store)) as writer:
        _append_events(ledger, edge, writer, old_size, head_seq)
        if edge.size != old_size:
            for path, body in edge.partials():
                writer.emit(path, body)
    written = writer.written
    checkpoint = make_checkpoint(origin, edge.size, edge.root(), signer)
    if signer is None:
        log.warning(
            "custody log checkpoint %d written UNSIGNED: TENIOS_CUSTODY_KEY_FILE is not set "
            "(create a key with `tenios-archive audit keygen`)",
            edge.size,
        )
    name = checkpoint_name(edge.size)
    key = files.key(name)
    numbered = files.read(name)
    if numbered is not None:
        # The same tree, signed before (perhaps by an earlier key): it stays as written.
        checkpoint = _same_tree(numbered, checkpoint, key)
    note, report = checkpoint.note, None
    if witnesses is not None and checkpoint.signed:
        note = add_signatures(note, _carried(latest, note, witnesses))
        report = witnesses.collect(note, latest, tree_reader(files, edge.size))
        note = report.note
    if numbered is None:
        try:
            store.put_document(
                key, note, content_type=CONTENT_TYPE, retain_until=_retain_until(store)
            )
        except ArchiveConflict:  # another run wrote it meanwhile: keep its bytes, add ours
            checkpoint = _same_tree(files.require(name), checkpoint, key)
            note = checkpoint.note
            if report is not None and checkpoint.signed:
                note = add_signatures(note, signature_lines(report.note))
    checkpoint = replace(checkpoint, note=note)
    _replace_latest(files, checkpoint)
    return Published(checkpoint, key, old_size, written, report)


def witness_latest(store: ArchiveStore, witnesses: WitnessSession) -> WitnessReport | None:
    """Submit the bucket's latest checkpoint to the witnesses that have not cosigned it
    (a run with nothing new to log: a witness that was down last time gets it now).

    None when there is no signed latest checkpoint, or every witness cosigned it.
    """
    files = LogFiles(store, log_prefix(store.prefix))
    latest = files.read(LATEST)
    if latest is None:
        return None
    try:
        checkpoint = open_checkpoint(latest, None)
        if not checkpoint.signed or not witnesses.witnesses.policy.check(latest).missing:
            return None
    except (CheckpointError, signing.NoteError):
        return None  # the next checkpoint replaces it (verify-bucket reports it)
    report = witnesses.collect(latest, latest, tree_reader(files, checkpoint.size))
    _replace_latest(files, replace(checkpoint, note=report.note))
    return report


def _same_tree(note: bytes, checkpoint: LogCheckpoint, key: str) -> LogCheckpoint:
    existing = open_checkpoint(note, None)
    if (existing.size, existing.root) != (checkpoint.size, checkpoint.root):
        raise ChainBroken(
            f"{key} already signs a different root for {checkpoint.size} events: the "
            "ledger's history was rewritten",
            event_id=checkpoint.size,
        )
    return existing


def signature_lines(note: bytes, keys: set[tuple[str, bytes]] | None = None) -> list[str]:
    """The signature lines of a signed note, as text (only of ``keys``, (name, key id))."""
    _, signatures = signing.split_note(note)
    return [
        f"{signing.SIGNATURE_PREFIX}{name} {base64.b64encode(raw).decode()}\n"
        for name, raw in signatures
        if keys is None or (name, raw[:4]) in keys
    ]


def _carried(latest: bytes | None, note: bytes, witnesses: WitnessSession) -> list[str]:
    """The witnesses' valid cosignatures of this same checkpoint on the bucket's latest
    (a checkpoint submitted again keeps what it collected before)."""
    if latest is None:
        return []
    try:
        if signing.split_note(latest)[0] != signing.split_note(note)[0]:
            return []
        verifiers = [e.verifier for e in witnesses.witnesses.endpoints]
        valid = verify_cosignatures(latest, verifiers)
    except signing.NoteError:
        return []
    return signature_lines(latest, {(v.name, v.key_id) for v in verifiers if v.name in valid})


def _append_events(
    ledger: Ledger, edge: TreeEdge, writer: _TileWriter, old_size: int, head_seq: int
) -> None:
    """Append the ledger's events ``old_size < seq <= head_seq`` to ``edge``; the tiles
    and bundles they complete go to ``writer``."""
    for row in ledger.iter_events(old_size, head_seq):
        entry = event_entry(row)
        if len(entry) > MAX_ENTRY_BYTES:
            # Written before events were bounded (custody.fit_details): say so, loudly,
            # instead of failing inside the bundle encoder on every run.
            raise ChainBroken(
                f"event {row['seq']} ({row['event']} of {row['recording_uuid']}) is a custody "
                f"log entry of {len(entry):,} bytes, over the log's limit of "
                f"{MAX_ENTRY_BYTES:,}: the log cannot be extended past it and no checkpoint "
                "is written (`tenios-archive audit verify-chain` names it)",
                event_id=int(row["seq"]),
            )
        edge.append(entry, writer.emit)
    if edge.size != head_seq:
        raise ChainBroken(
            f"the ledger's events end at {edge.size}, not at {head_seq}", event_id=edge.size
        )


class _TileWriter:
    """Writes tiles and bundles (each final: ``If-None-Match: *``, read back) up to
    MAX_WRITERS at once, while the caller goes on hashing.

    At most twice that many bodies wait, so memory stays bounded (each body is at most
    a bundle of 256 entries).  The first failure stops it: nothing more is started,
    the writes under way finish, and leaving the ``with`` raises that failure — so no
    checkpoint is signed over a tile that is not in the bucket.  The tiles are
    independent objects; only the checkpoint, written after the ``with``, names them.
    """

    def __init__(self, store: ArchiveStore, files: LogFiles, retain_until: datetime | None):
        self._store = store
        self._files = files
        self._retain_until = retain_until
        self._pool = ThreadPoolExecutor(
            max_workers=min(MAX_WRITERS, store.connections), thread_name_prefix="custody-log"
        )
        self._room = threading.BoundedSemaphore(2 * MAX_WRITERS)
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self.written = 0

    def __enter__(self) -> _TileWriter:
        return self

    def emit(self, path: str, body: bytes) -> None:
        """Write ``path`` (relative to the log prefix) in the background."""
        self._raise_failure()
        self._room.acquire()
        try:
            future = self._pool.submit(
                _put_final, self._store, self._files.key(path), body, self._retain_until
            )
        except BaseException:
            self._room.release()
            raise
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self._room.release()
        failure = future.exception()
        with self._lock:
            if failure is None:
                self.written += 1
            elif self._failure is None:
                self._failure = failure

    def _raise_failure(self) -> None:
        with self._lock:
            failure = self._failure
        if failure is not None:
            raise failure

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._pool.shutdown(wait=True)
        if value is None:
            self._raise_failure()


def _replace_latest(files: LogFiles, checkpoint: LogCheckpoint) -> None:
    """Point ``checkpoint`` at ours unless it already names a larger tree, or the same
    tree with every signature ours has (a cosigned copy replaces one with fewer).

    Two runs checkpointing at once both extend the log (their tiles agree); the one
    that finishes last must not move the latest checkpoint back to its smaller tree.
    The replacement is a conditional write on what was read (``If-Match`` its ETag,
    ``If-None-Match: *`` when there was none): if another run replaced it in between,
    the write is refused and the decision is made again on what that run wrote.
    """
    key = files.key(LATEST)
    for _ in range(_LATEST_TRIES):
        found = files.store.read_document(key)
        current, etag = found if found is not None else (None, None)
        if current == checkpoint.note:
            return
        if current is not None:
            try:
                size = open_checkpoint(current, None).size
                if size > checkpoint.size or (
                    size == checkpoint.size
                    and set(_signatures(current)) >= set(_signatures(checkpoint.note))
                ):
                    return
            except (CheckpointError, signing.NoteError):
                pass  # unreadable: replace it with a good one
        if files.store.replace_document(key, checkpoint.note, content_type=CONTENT_TYPE, etag=etag):
            return
    raise StoreUnavailable(
        f"{key} was replaced by other writers {_LATEST_TRIES} times while this run tried to "
        f"point it at its checkpoint of {checkpoint.size} events; the numbered checkpoint "
        "is written, the next run points the latest at it",
        s3_key=key,
    )


def _signatures(note: bytes) -> list[tuple[str, bytes]]:
    return signing.split_note(note)[1] if b"\n\n" in note else []


def _check_last_entry(ledger: Ledger, edge: TreeEdge, files: LogFiles, size: int) -> None:
    if size == 0:
        return
    entries = edge.entries or files.bundle((size - 1) // merkle.TILE_WIDTH, merkle.TILE_WIDTH)
    event = ledger.event_at(size)
    if event is None or event_entry(event) != entries[-1]:
        raise ChainBroken(
            f"the custody log's entry {size - 1} is not the ledger's event {size}: the "
            "ledger's history was rewritten after it was logged",
            event_id=size,
        )


def _put_final(store: ArchiveStore, key: str, body: bytes, retain_until: datetime | None) -> None:
    """Write a tile / bundle once; an identical one already there (a re-run) is fine."""
    try:
        store.put_document(key, body, content_type=TILE_TYPE, retain_until=retain_until)
    except ArchiveConflict as exc:
        raise ChainBroken(
            f"{key} already exists with different content: the log in the bucket and the "
            "ledger disagree (run `tenios-archive audit verify-bucket`)",
            event_id=None,
        ) from exc


def _retain_until(store: ArchiveStore) -> datetime | None:
    """Now + the store's retention period: the log outlives every recording it covers."""
    if store.retention_mode == "none" or store.retention_days <= 0:
        return None
    return datetime.now(UTC) + timedelta(days=store.retention_days)


def load_signer(key_file: Path | None) -> signing.Signer | None:
    """The signer of TENIOS_CUSTODY_KEY_FILE (None when unset); ConfigError names the setting."""
    if key_file is None:
        return None
    path = Path(str(key_file)).expanduser()
    try:
        return signing.read_signer(path)
    except FileNotFoundError:
        raise ConfigError(
            f"TENIOS_CUSTODY_KEY_FILE: {path} does not exist (create one with "
            "`tenios-archive audit keygen --name NAME --output FILE`)",
            variable="TENIOS_CUSTODY_KEY_FILE",
        ) from None
    except (OSError, signing.NoteError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(
            f"TENIOS_CUSTODY_KEY_FILE: cannot use {path} as the custody signing key ({reason})",
            variable="TENIOS_CUSTODY_KEY_FILE",
        ) from None


def check_signing_key(
    ledger: Ledger,
    store: ArchiveStore,
    signer: signing.Signer | None,
    *,
    latest: bytes | None = None,
) -> None:
    """ConfigError (exit 2) when ``signer`` is not the key that may sign the log next.

    That is the key that signed the bucket's newest checkpoint — or, once a
    ``key_rotated`` event signed in by that key names a new key, the new key (and no
    longer the old one).  A log with no checkpoint yet, an unsigned newest checkpoint
    and an unsigned run (``signer`` None) are not this check's business.
    """
    if signer is None:
        return
    files = LogFiles(store, log_prefix(store.prefix))
    note = latest if latest is not None else files.read(LATEST)
    if note is None or b"\n\n" not in note:
        return
    rotation = latest_rotation(ledger)
    mine = str(signer.verifier)
    if _signs(note, signer.verifier):
        if rotation is None or str(rotation.old) != mine or not _covers(note, rotation):
            return
        raise ConfigError(
            f"TENIOS_CUSTODY_KEY_FILE holds the custody key {signer.name}+"
            f"{signer.verifier.hash.hex()}, which was rotated to {rotation.new.name}+"
            f"{rotation.new.hash.hex()} at custody event {rotation.seq}: set "
            "TENIOS_CUSTODY_KEY_FILE to the new key's file",
            variable="TENIOS_CUSTODY_KEY_FILE",
        )
    if (
        rotation is not None
        and str(rotation.new) == mine
        and _signs(note, rotation.old)
        and _covers(note, rotation)
    ):
        return
    raise ConfigError(
        f"TENIOS_CUSTODY_KEY_FILE holds the custody key {signer.name}+"
        f"{signer.verifier.hash.hex()}, but the custody log's newest checkpoint "
        f"s3://{store.bucket}/{files.key(LATEST)} is signed by {log_signer(note)}: set "
        "TENIOS_CUSTODY_KEY_FILE back to the key that signs the log, or change keys with "
        "`tenios-archive audit rotate-key --new-key FILE` (docs/compliance.md)",
        variable="TENIOS_CUSTODY_KEY_FILE",
    )


def latest_rotation(ledger: Ledger) -> Rotation | None:
    """The ledger's newest ``key_rotated`` event (None when the key was never rotated)."""
    rows = ledger.events_named([ROTATION_EVENT])
    for row in reversed(rows):
        event = {**row, "details": json.loads(row["details"])}
        rotation = parse_rotation(event)
        if rotation is not None:
            return rotation
    return None


def _signs(note: bytes, verifier: signing.Verifier) -> bool:
    try:
        open_checkpoint(note, verifier)
    except CheckpointError:
        return False
    return True


def _covers(note: bytes, rotation: Rotation) -> bool:
    """Whether the checkpoint ``note`` holds the rotation's event (it is signed in)."""
    try:
        return open_checkpoint(note, None).size >= rotation.seq
    except CheckpointError:
        return False


KEYGEN_COMMAND = "tenios-archive audit keygen --output /etc/tenios-archive/custody.key"
"""The one command that creates the custody signing key (README, the first hour)."""

NO_CUSTODY_KEY = (
    f"TENIOS_CUSTODY_KEY_FILE is not set: create the custody signing key with `{KEYGEN_COMMAND}` "
    "and set TENIOS_CUSTODY_KEY_FILE to that file (or set TENIOS_CUSTODY_UNSIGNED=true to "
    "write unsigned checkpoints auditors cannot verify)"
)


def custody_signer(key_file: Path | None, *, unsigned: bool) -> signing.Signer | None:
    """The signer a run or `audit checkpoint` must sign with: the key of
    TENIOS_CUSTODY_KEY_FILE; None only when the operator opted out with
    TENIOS_CUSTODY_UNSIGNED=true; ConfigError (naming ``audit keygen``) otherwise.  An
    unsigned checkpoint is locked in the bucket for the retention period, so it is never
    written by default."""
    if key_file is None and not unsigned:
        raise ConfigError(NO_CUSTODY_KEY, variable="TENIOS_CUSTODY_KEY_FILE")
    return load_signer(key_file)


class LoggedCheckpoint(NamedTuple):
    """A log checkpoint as the ledger's ``checkpoint`` event records it."""

    key: str
    size: int
    signed: bool

    @property
    def described(self) -> str:
        how = "signed" if self.signed else "UNSIGNED"
        return f"latest {how} checkpoint {self.key} ({self.size:,} events)"


def unsigned_log_problem(logged: LoggedCheckpoint) -> str:
    """What an unsigned latest checkpoint means and what to do, in one line (said alike
    by `audit verify-chain` and the report, as `audit verify-bucket` fails on it)."""
    return (
        f"the latest checkpoint (size {logged.size:,}) has no signature, so auditors cannot "
        "verify the archive from the bucket; set TENIOS_CUSTODY_KEY_FILE (see `tenios-archive "
        "audit keygen`) and run: tenios-archive audit checkpoint"
    )


def latest_log_checkpoint(ledger: Ledger) -> LoggedCheckpoint | None:
    """The newest log checkpoint the ledger's ``checkpoint`` events name.

    Read from the ledger, not the bucket, so ``ledger show`` works without S3 access;
    ``audit verify-bucket`` is what checks the bucket.
    """
    for event in reversed(ledger.events_named(["checkpoint"])):
        details = json.loads(event["details"])
        if details.get("log_checkpoint"):
            return LoggedCheckpoint(
                str(details["log_checkpoint"]),
                int(details["log_size"]),
                bool(details.get("log_signed")),
            )
    return None
