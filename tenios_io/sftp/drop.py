"""The customer's SFTP drop folder: find settled recordings, stream them, release them.

:class:`SftpDrop` works on an injected ``paramiko.SFTPClient`` (or an
:class:`~tenios_io.sftp.connect.SftpConnection`, which adds reconnection) and does three
things, each safe to repeat:

- :meth:`SftpDrop.sweep` lists the drop recursively and sorts every regular file into
  *ready* (name matches the pattern, settled), *unsettled* (still being written: a
  temporary name, a size/mtime not yet unchanged across two sightings at least the
  settle time apart, or a container that is not complete yet), *unmatched* (counted,
  never touched), *ambiguous* (several UUIDs and
  no way to tell which is the recording, see :mod:`~tenios_io.sftp.naming`; never
  touched) and *duplicates* (a second file naming the same recording; the first by
  path wins);
- :meth:`SftpDrop.fetch` streams one file into a sink with read-ahead (paramiko's
  prefetch, 1 MiB reads), and refuses a file that changed while it was read;
- :meth:`SftpDrop.release` applies ``TENIOS_SFTP_AFTER`` (keep, move:DIR, delete) once the
  archive copy is verified, and only to a file proven to hold the archived bytes (the
  size and mtime it had when it was hashed, or hashed again); a file that is already
  gone counts as released.  The custody around it (intent first) is
  :mod:`tenios_io.sftp.release`'s.

Errors: SFTP status errors are translated here (missing file → SourceFileMissing, anything
else → SourceUnavailable); a lost connection is the connection's business (see
:meth:`SftpConnection.run`), which retries the whole operation or raises SourceUnavailable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, Literal, NoReturn, Protocol, cast

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR

from tenios_io import crashpoints
from tenios_io.config import DEFAULT_SFTP_PATTERN, ENV_PREFIX, Settings
from tenios_io.exceptions import (
    ConfigError,
    RecordingInvalid,
    SourceFileMissing,
    SourceOutsideDrop,
    SourceUnavailable,
)
from tenios_io.recording.source import Sink
from tenios_io.recording.validation import check_complete
from tenios_io.sftp.connect import SftpConnection, connection_lost, parse_sftp_url
from tenios_io.sftp.naming import (
    Ambiguous,
    KnownIds,
    Lookup,
    NameReader,
    compile_name_pattern,
    resolve,
    uuids_in,
)
from tenios_io.untrusted import MAX_DROP_NAME_BYTES, MAX_DROP_PATH_CHARS, escape_name, inside_drop

__all__ = [
    "CHUNK_SIZE",
    "TEMPORARY_SUFFIXES",
    "DropFile",
    "FetchedFile",
    "SftpDrop",
    "SightingLog",
    "SweepResult",
    "is_temporary_name",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
"""Bytes handed to the sink per write (1 MiB); paramiko reads ahead in 32 KiB requests."""

_REQUEST_SIZE = paramiko.SFTPFile.MAX_REQUEST_SIZE
#: Read requests in flight per file: 128 x 32 KiB = 4 MiB ahead of the reader, enough to
#: keep a link of 100 ms round trip at ~40 MiB/s, and the most a fetch buffers.
_READ_AHEAD = 512

TEMPORARY_SUFFIXES = (".part", ".tmp", ".filepart", ".partial")
"""Name endings uploaders use while a file is still being written (WinSCP, curl, rsync …)."""

_MAX_MOVE_SUFFIX = 1000
_PATTERN_VAR = f"{ENV_PREFIX}SFTP_PATTERN"
_AFTER_VAR = f"{ENV_PREFIX}SFTP_AFTER"

AfterMode = Literal["keep", "move", "delete"]


def is_temporary_name(name: str) -> bool:
    """Whether a base name looks like a file still being uploaded (hidden or .part & co)."""
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class DropFile:
    """A settled recording file in the drop."""

    path: str
    """Path on the server, as given to :meth:`SftpDrop.fetch` and :meth:`SftpDrop.release`."""
    recording_uuid: str
    """From the file name, in canonical lower-case form."""
    size: int
    mtime: float
    """Modification time on the server, seconds since the epoch."""
    call_uuid: str | None = None
    """The call UUID the name also carries, when it is recognised as one."""

    @property
    def modified_at(self) -> datetime:
        """``mtime`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.mtime, tz=UTC)


@dataclass(frozen=True)
class FetchedFile:
    """What :meth:`SftpDrop.fetch_file` read: the byte count and the file's mtime then."""

    size: int
    mtime: float


@dataclass(frozen=True)
class Settling:
    """A file whose sighting is too young (it may still be written): settled in
    ``seconds_left`` if it stays as it is (by the sightings' clock)."""

    path: str
    recording_uuid: str
    seconds_left: float


@dataclass(frozen=True)
class SweepResult:
    """What one :meth:`SftpDrop.sweep` found; every list is in path order."""

    ready: list[DropFile] = field(default_factory=list)
    """Settled files to archive, at most one per recording_uuid."""
    unsettled: list[str] = field(default_factory=list)
    """Matching files still being written (temporary name, recent or changing); next sweep."""
    unmatched: list[str] = field(default_factory=list)
    """Files whose name does not match the pattern: counted, never touched."""
    duplicates: list[DropFile] = field(default_factory=list)
    """Further files naming a recording_uuid an earlier path already names: never touched."""
    ambiguous: list[tuple[str, str]] = field(default_factory=list)
    """``(path, why)`` of names that cannot be given to one recording without a guess:
    never touched, reported so the operator can set TENIOS_SFTP_PATTERN."""
    incomplete: list[tuple[str, str]] = field(default_factory=list)
    """``(path, why)`` of settled files whose container is not whole (also counted in
    ``unsettled``): left alone, looked at again next sweep."""
    settling: list[Settling] = field(default_factory=list)
    """The unsettled files whose only fault is a sighting too young (recorded sightings
    only), with their recording and when they settle."""
    stopped: bool = False
    """A stop request (a signal) ended the sweep early: the lists hold what was looked
    at until then; the rest waits for the next sweep."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(name, why)`` of entries the sweep cannot read safely — a name that is not
    UTF-8 (its bytes escaped as ``\\xNN``), longer than 255 bytes, or a path longer
    than 1,024 characters: never touched, reported; the rest of the drop goes on."""


class Sighted(Protocol):
    """What a :class:`SightingLog` knows of one file after a sighting."""

    @property
    def unchanged_seconds(self) -> float: ...

    @property
    def complete(self) -> bool: ...


class SightingLog(Protocol):
    """Where sweeps record what they saw (the ledger: tenios_io/ledger/sightings.py),
    timed by one clock (the database's), so stability never compares two hosts' clocks."""

    def sight_drop_files(self, files: Mapping[str, tuple[int, float]]) -> Mapping[str, Sighted]:
        """Record a sighting of ``files`` (path → (size, mtime)); forget the others."""
        ...

    def mark_drop_files_complete(self, paths: Collection[str]) -> None:
        """Their containers were found complete at the size and mtime last sighted."""
        ...


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime: float
    changed_at: float | None  # when this sweep-to-sweep observation last changed


def _parse_after(after: str) -> tuple[AfterMode, str | None]:
    if after in ("keep", "delete"):
        return ("keep" if after == "keep" else "delete"), None
    if after.startswith("move:") and after[5:].strip():
        return "move", after[5:].strip()
    raise ConfigError(
        f"{_AFTER_VAR} must be keep, delete or move:DIR (got {after!r})", variable=_AFTER_VAR
    )


def _compile_pattern(pattern: str) -> NameReader:
    try:
        return NameReader(compile_name_pattern(pattern))
    except ValueError as exc:
        raise ConfigError(f"{_PATTERN_VAR} {exc}", variable=_PATTERN_VAR) from None


def _normalise(path: str) -> str:
    path = posixpath.normpath(path) if path else "."
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _join(directory: str, name: str) -> str:
    return name if directory == "." else posixpath.join(directory, name)


def _list_directory(
    sftp: paramiko.SFTPClient, directory: str
) -> list[tuple[bytes, paramiko.SFTPAttributes]]:
    """``listdir_attr``, with each entry's name as the server sent it (bytes).

    paramiko decodes every name (and its ``ls -l`` line) as UTF-8 while it lists, so one
    file with a Latin-1 name failed the whole listing — and every run.  The public call
    serves every directory whose names all decode; only a directory where one does not
    is listed again at the byte level (:func:`_list_raw`), its other entries kept.
    """
    try:
        return [(attrs.filename.encode("utf-8"), attrs) for attrs in sftp.listdir_attr(directory)]
    except UnicodeDecodeError:
        return _list_raw(sftp, directory)


def _list_raw(
    sftp: paramiko.SFTPClient, directory: str
) -> list[tuple[bytes, paramiko.SFTPAttributes]]:
    """``listdir_attr`` reading names as bytes; an entry whose name does not decode
    gets ``filename`` None (the caller skips it).  paramiko's request layer
    (``_request``, ``SFTPAttributes._from_msg``), exactly as ``listdir_attr`` uses it."""
    client: Any = sftp  # the request layer is paramiko's own, not in its type stubs
    kind, msg = client._request(CMD_OPENDIR, client._adjust_cwd(directory))
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("Expected handle")
    handle = msg.get_binary()
    found: list[tuple[bytes, paramiko.SFTPAttributes]] = []
    try:
        while True:
            try:
                kind, msg = client._request(CMD_READDIR, handle)
            except EOFError:
                break
            if kind != CMD_NAME:
                raise paramiko.SFTPError("Expected name response")
            for _ in range(msg.get_int()):
                raw = msg.get_string()
                longname = msg.get_string().decode("utf-8", errors="replace")
                try:
                    name: str | None = raw.decode("utf-8")
                except UnicodeDecodeError:
                    name = None
                attrs = cast(Any, paramiko.SFTPAttributes)._from_msg(msg, name, longname)
                if name not in (".", ".."):
                    found.append((raw, attrs))
    finally:
        client._request(CMD_CLOSE, handle)
    return found


def _unreadable_name(raw: bytes) -> str | None:
    """Why a drop entry's name is not read (hostile data, tenios_io.untrusted), or None."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "its name is not UTF-8"
    if len(raw) > MAX_DROP_NAME_BYTES:
        return f"its name is longer than {MAX_DROP_NAME_BYTES} bytes"
    return None


def _restart(sink: Sink) -> None:
    sink.seek(0)
    sink.truncate()


class SftpDrop:
    """The drop folder below ``root`` on an SFTP server (see the module docstring).

    ``sftp`` is a connected ``paramiko.SFTPClient`` (no reconnection) or an
    :class:`SftpConnection` (reconnects after a dropped connection).  ``pattern`` is
    searched for in each base name and must have the named group ``recording_uuid``;
    ``after`` is ``keep``, ``move:DIR`` (DIR relative to ``root`` unless absolute) or
    ``delete``.  ``clock`` gives "now" in epoch seconds, for the settle check.

    One instance remembers the size and mtime of each file between sweeps, so keep using
    the same instance across sweeps; :meth:`sweep` is not meant to run in two threads at
    once (fetch and release are).
    """

    def __init__(
        self,
        sftp: paramiko.SFTPClient | SftpConnection,
        root: str,
        *,
        pattern: str = DEFAULT_SFTP_PATTERN,
        settle_seconds: float = 60.0,
        after: str = "keep",
        clock: Callable[[], float] = time.time,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._connection = sftp if isinstance(sftp, SftpConnection) else SftpConnection.attach(sftp)
        self.root = _normalise(root)
        self._names = _compile_pattern(pattern)
        self._settle_seconds = settle_seconds
        self._after, after_dir = _parse_after(after)
        self._move_dir: str | None = None
        if after_dir is not None:
            self._move_dir = _normalise(
                after_dir if after_dir.startswith("/") else _join(self.root, after_dir)
            )
        self._clock = clock
        self._chunk_size = chunk_size
        self._seen: dict[str, _Seen] = {}
        self._real_root: str | None = None

    @classmethod
    def from_settings(
        cls, sftp: paramiko.SFTPClient | SftpConnection, settings: Settings
    ) -> SftpDrop:
        """A drop at the path of TENIOS_SFTP_URL with the pattern, settle time and after-action."""
        if not settings.sftp_url:
            raise ConfigError(f"{ENV_PREFIX}SFTP_URL is not set", variable=f"{ENV_PREFIX}SFTP_URL")
        return cls(
            sftp,
            parse_sftp_url(settings.sftp_url).path,
            pattern=settings.sftp_pattern,
            settle_seconds=settings.sftp_settle_seconds,
            after=settings.sftp_after,
        )

    def __repr__(self) -> str:
        after = f"move:{self._move_dir}" if self._after == "move" else self._after
        return f"<SftpDrop {self.root!r} via {self._connection!r} after={after}>"

    # -- names ----------------------------------------------------------------------------

    def contains(self, path: str) -> bool:
        """Whether ``path`` lies inside the drop (tenios_io.untrusted.inside_drop)."""
        return inside_drop(self.root, path) is not None

    def _confined(self, path: str) -> str:
        """The server path of ``path`` inside the drop; SourceOutsideDrop otherwise.

        Every open, stat, move and delete goes through here: a path the ledger holds
        came from a producer or a sweep and is never followed outside the drop
        (defence in depth: the intake rejects such hints already)."""
        inside = inside_drop(self.root, path)
        if inside is None:
            raise SourceOutsideDrop(
                f"SFTP path {escape_name(path.encode('utf-8', 'surrogateescape')[:300])} "
                f"lies outside the drop {self.root!r}: it is never opened, moved or deleted"
            )
        return inside

    def _resolved_inside(self, sftp: paramiko.SFTPClient, path: str) -> None:
        """SourceOutsideDrop unless the server resolves ``path`` — symbolic links in its
        directories included — to a place below the drop's own resolved root (a link
        to elsewhere that someone put into the drop is not followed).  A missing file
        raises FileNotFoundError, as paramiko does."""
        if self._real_root is None:
            self._real_root = sftp.normalize(self.root)
        real = sftp.normalize(path)
        base = self._real_root.rstrip("/")
        if real != self._real_root and not real.startswith(base + "/"):
            raise SourceOutsideDrop(
                f"SFTP path {path} resolves to {real}, outside the drop {self._real_root!r} "
                "(a symbolic link): it is never opened, moved or deleted"
            )

    def recording_uuid_of(self, path: str) -> str | None:
        """The canonical recording_uuid the pattern finds in the base name, or None
        (the name alone, without the ledger: :meth:`sweep` matches names to rows)."""
        ids = self._names.read(posixpath.basename(path))
        if ids is None:
            return None
        return ids.pattern_recording or ids.uuids[0]

    def uuids_of(self, path: str) -> list[str]:
        """Every UUID in the base name of ``path`` (canonical, in order)."""
        return uuids_in(posixpath.basename(path))

    # -- sweep ----------------------------------------------------------------------------

    def sweep(
        self,
        known: Lookup | None = None,
        sightings: SightingLog | None = None,
        stop: threading.Event | None = None,
    ) -> SweepResult:
        """List the drop recursively and sort its files (see :class:`SweepResult`).

        ``known`` asks the ledger which UUIDs of the names it knows as recordings and
        as calls (one call per sweep); without it nothing is known, so a name with one
        UUID is that recording and a name with several is ambiguous (unless an explicit
        pattern says which).

        ``sightings`` (the ledger) records each sighting by the database clock: a file
        is then settled when its size and mtime are unchanged across two sightings at
        least the settle time apart — whatever this host's and the server's clocks say
        — and its container is complete (WAV sizes agree with the file; checked once
        per size and mtime).  Without it (tests, tools) this instance remembers what it
        saw and also trusts ``clock() - mtime``.

        ``stop`` (a signal) set meanwhile ends the sweep at the next directory listed or
        file checked (``SweepResult.stopped``): what it found so far is returned.
        """
        stopping = stop or threading.Event()
        files, skipped = self._connection.run(
            lambda sftp: self._list_files(sftp, stopping), what=f"sweep {self.root}"
        )
        if stopping.is_set():
            return SweepResult(stopped=True)
        now = self._clock()
        result = SweepResult(skipped=skipped)
        for name, why in skipped:
            logger.warning("SFTP sweep: skipping %s (%s); it is left alone", name, why)
        named = []
        seen: dict[str, _Seen] = {}
        for path, attrs in sorted(files, key=lambda item: item[0]):
            size, mtime = attrs.st_size or 0, float(attrs.st_mtime or 0)
            changed_at = self._observe(path, size, mtime, now)
            seen[path] = _Seen(size, mtime, changed_at)
            ids = self._names.read(posixpath.basename(path))
            if ids is None:
                result.unmatched.append(path)
            else:
                named.append((path, size, mtime, changed_at, ids))
        self._seen = seen  # forget files that went away
        sighted: Mapping[str, Sighted] = {}
        if sightings is not None:
            sighted = sightings.sight_drop_files(
                {
                    path: (size, mtime)
                    for path, size, mtime, _, _ in named
                    if not is_temporary_name(posixpath.basename(path))
                }
            )
        complete: list[str] = []
        every = {u for *_, ids in named for u in ids.uuids}
        knowing = known(every) if known is not None and every else KnownIds()
        claimed: set[str] = set()
        for path, size, mtime, changed_at, ids in named:
            if stopping.is_set():
                break
            if is_temporary_name(posixpath.basename(path)):
                result.unsettled.append(path)
                continue
            owner = resolve(ids, knowing)
            if isinstance(owner, Ambiguous):
                result.ambiguous.append((path, owner.reason))
                continue
            found = DropFile(path, owner.recording_uuid, size, mtime, owner.call_uuid)
            if owner.recording_uuid in claimed:
                result.duplicates.append(found)
            elif sightings is None:
                if self._settled(mtime, changed_at, now):
                    result.ready.append(found)
                else:
                    result.unsettled.append(path)
            elif sighted[path].unchanged_seconds < self._settle_seconds:
                result.unsettled.append(path)
                left = self._settle_seconds - sighted[path].unchanged_seconds
                result.settling.append(Settling(path, owner.recording_uuid, left))
            elif sighted[path].complete or self._whole(found, result):
                complete.append(path)
                result.ready.append(found)
            else:
                result.unsettled.append(path)
            claimed.add(owner.recording_uuid)
            crashpoints.reached("sweep_file_looked_at")
        if sightings is not None:
            sightings.mark_drop_files_complete(
                [path for path in complete if not sighted[path].complete]
            )
        logger.info(
            "SFTP sweep of %s: %d ready, %d unsettled, %d unmatched, %d ambiguous, %d duplicates",
            self.root,
            len(result.ready),
            len(result.unsettled),
            len(result.unmatched),
            len(result.ambiguous),
            len(result.duplicates),
        )
        if stopping.is_set():
            return dataclasses.replace(result, stopped=True)
        return result

    def _whole(self, found: DropFile, result: SweepResult) -> bool:
        """Whether the file's container is complete (headers only); a file that is not
        is noted in ``result.incomplete``."""

        def check(sftp: paramiko.SFTPClient) -> str | None:
            try:
                with sftp.open(found.path, "rb") as handle:
                    check_complete(cast(BinaryIO, handle), found.size)
            except RecordingInvalid as exc:
                return str(exc)
            except FileNotFoundError:
                return "the file went away"
            except OSError as exc:
                if connection_lost(exc, sftp):
                    raise
                return f"cannot read it ({exc})"
            return None

        why = self._connection.run(check, what=f"check {found.path}")
        if why is None:
            return True
        logger.info("SFTP sweep: %s is not complete yet: %s", found.path, why)
        result.incomplete.append((found.path, why))
        return False

    def _observe(self, path: str, size: int, mtime: float, now: float) -> float | None:
        previous = self._seen.get(path)
        if previous is None:
            return None  # first sighting: only the mtime can tell
        if (previous.size, previous.mtime) != (size, mtime):
            return now
        return previous.changed_at

    def _settled(self, mtime: float, changed_at: float | None, now: float) -> bool:
        # A future mtime (clock skew) counts as recent: better late than half a file.
        if now - mtime < self._settle_seconds:
            return False
        return changed_at is None or now - changed_at >= self._settle_seconds

    def _list_files(
        self, sftp: paramiko.SFTPClient, stop: threading.Event
    ) -> tuple[list[tuple[str, paramiko.SFTPAttributes]], list[tuple[str, str]]]:
        files: list[tuple[str, paramiko.SFTPAttributes]] = []
        skipped: list[tuple[str, str]] = []
        pending = [self.root]
        while pending and not stop.is_set():
            directory = pending.pop()
            try:
                entries = _list_directory(sftp, directory)
            except OSError as exc:
                if connection_lost(exc, sftp):
                    raise
                if directory == self.root:
                    raise ConfigError(
                        f"cannot list the SFTP drop {self.root!r} ({exc}): check the path in "
                        f"{ENV_PREFIX}SFTP_URL and the login's permissions",
                        variable=f"{ENV_PREFIX}SFTP_URL",
                    ) from exc
                logger.warning("SFTP sweep: skipping %s (%s)", directory, exc)
                continue
            for raw, entry in entries:
                why = _unreadable_name(raw)
                if why is None:
                    path = _join(directory, entry.filename)
                    if len(path) > MAX_DROP_PATH_CHARS:
                        why = f"its path is longer than {MAX_DROP_PATH_CHARS:,} characters"
                if why is not None:
                    skipped.append((_join(directory, escape_name(raw[:MAX_DROP_NAME_BYTES])), why))
                    continue
                mode = entry.st_mode or 0
                if stat.S_ISDIR(mode):
                    # Hidden directories are not uploads; the move target holds released files.
                    if not entry.filename.startswith(".") and _normalise(path) != self._move_dir:
                        pending.append(path)
                elif stat.S_ISREG(mode):
                    files.append((path, entry))
                # symlinks, sockets, devices: not recordings; never followed (no loops)
        return files, skipped

    # -- fetch ----------------------------------------------------------------------------

    def check(self) -> None:
        """ConfigError unless the drop directory is there and is a directory (preflight)."""

        def probe(sftp: paramiko.SFTPClient) -> None:
            try:
                mode = sftp.stat(self.root).st_mode or 0
            except OSError as exc:
                if connection_lost(exc, sftp):
                    raise
                raise ConfigError(
                    f"cannot open the SFTP drop {self.root!r} ({exc}): check the path in "
                    f"{ENV_PREFIX}SFTP_URL and the login's permissions",
                    variable=f"{ENV_PREFIX}SFTP_URL",
                ) from exc
            if not stat.S_ISDIR(mode):
                raise ConfigError(
                    f"the SFTP drop {self.root!r} is not a directory ({ENV_PREFIX}SFTP_URL)",
                    variable=f"{ENV_PREFIX}SFTP_URL",
                )

        self._connection.run(probe, what=f"stat {self.root}")

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a regular file (not a symbolic link) in the drop now;
        SourceOutsideDrop when it lies outside the drop."""
        path = self._confined(path)

        def check(sftp: paramiko.SFTPClient) -> bool:
            try:
                self._resolved_inside(sftp, path)
                return stat.S_ISREG(sftp.lstat(path).st_mode or 0)
            except FileNotFoundError:
                return False
            except OSError as exc:
                self._translate(exc, sftp, f"cannot stat {path}")

        return self._connection.run(check, what=f"stat {path}")

    def fetch(self, path: str, sink: Sink) -> int:
        """Stream ``path`` into ``sink``; return the byte count (see :meth:`fetch_file`)."""
        return self.fetch_file(path, sink).size

    def fetch_file(self, path: str, sink: Sink) -> FetchedFile:
        """Stream ``path`` into ``sink``; return the byte count and the file's mtime.

        The sink is restarted (``seek(0)``, ``truncate()``) before the first byte and again
        if anything fails, so it never holds half a file.  The file is stat-ed before and
        after reading: if its size or mtime moved, or fewer bytes came than its size said,
        it is still being written → SourceUnavailable ("changed while being read").  A
        missing file (or a symbolic link) → SourceFileMissing; a path outside the drop →
        SourceOutsideDrop, before anything is opened.
        """
        path = self._confined(path)
        try:
            return self._connection.run(
                lambda sftp: self._fetch_once(sftp, path, sink), what=f"fetch {path}"
            )
        except BaseException:
            with contextlib.suppress(OSError, ValueError):
                _restart(sink)
            raise

    def _fetch_once(self, sftp: paramiko.SFTPClient, path: str, sink: Sink) -> FetchedFile:
        try:
            self._resolved_inside(sftp, path)
        except FileNotFoundError as exc:
            raise SourceFileMissing(f"SFTP file {path} is not there (any more)") from exc
        except OSError as exc:
            self._translate(exc, sftp, f"cannot resolve {path}")
        before = self._stat_file(sftp, path)
        _restart(sink)
        received = 0
        started = time.monotonic()
        try:
            handle = sftp.open(path, "rb")
        except FileNotFoundError as exc:
            raise SourceFileMissing(f"SFTP file {path} is not there (any more)") from exc
        except OSError as exc:
            self._translate(exc, sftp, f"cannot open {path}")
        with handle:
            # Read-ahead: paramiko sends 32 KiB read requests ahead of what we read and
            # collects the answers as we read.  At most _READ_AHEAD requests are in
            # flight: without that cap paramiko sends them all at once, and a 500 MiB
            # fetch whose reader fell behind (a loaded machine) was seen holding 570 MiB.
            handle.prefetch(before.st_size, max_concurrent_requests=_READ_AHEAD)
            pieces: list[bytes] = []
            pending = 0
            while True:
                try:
                    # One read request's worth at a time: SFTPFile.read(n) for larger n
                    # joins the pieces by repeated bytes concatenation (quadratic).
                    piece = handle.read(_REQUEST_SIZE)
                except EOFError as exc:  # a read-ahead request found EOF: the file shrank
                    if connection_lost(exc, sftp):
                        raise
                    raise self._changed(path, "it shrank") from exc
                except OSError as exc:
                    self._translate(exc, sftp, f"cannot read {path}")
                if piece:
                    pieces.append(piece)
                    pending += len(piece)
                if pending and (pending >= self._chunk_size or not piece):
                    sink.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))
                    received += pending
                    pieces.clear()
                    pending = 0
                if not piece:
                    break
        try:
            after = self._stat_file(sftp, path)
        except SourceFileMissing as exc:
            raise self._changed(path, "it disappeared") from exc
        size_before = before.st_size or 0
        if (after.st_size, after.st_mtime) != (
            before.st_size,
            before.st_mtime,
        ) or received != size_before:
            raise self._changed(
                path,
                f"size {size_before} → {after.st_size}, mtime {before.st_mtime} → "
                f"{after.st_mtime}, {received} bytes read",
            )
        elapsed = time.monotonic() - started
        logger.debug(
            "SFTP fetched %s: %d bytes in %.2f s (%.1f MiB/s)",
            path,
            received,
            elapsed,
            received / 2**20 / elapsed if elapsed > 0 else 0.0,
        )
        return FetchedFile(received, float(before.st_mtime or 0))

    @staticmethod
    def _changed(path: str, detail: str) -> SourceUnavailable:
        return SourceUnavailable(
            f"SFTP file {path} changed while being read ({detail}): it is probably still "
            "being written; try again later"
        )

    def _stat_file(self, sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes:
        try:
            # lstat: a symbolic link in the drop is not followed (it may point anywhere).
            attrs = sftp.lstat(path)
        except FileNotFoundError as exc:
            raise SourceFileMissing(f"SFTP file {path} is not there (any more)") from exc
        except OSError as exc:
            self._translate(exc, sftp, f"cannot stat {path}")
        if not stat.S_ISREG(attrs.st_mode or 0):
            raise SourceFileMissing(f"SFTP path {path} is not a regular file")
        return attrs

    @staticmethod
    def _translate(exc: OSError, sftp: paramiko.SFTPClient, what: str) -> NoReturn:
        """A lost connection goes up as is (the connection retries); else SourceUnavailable."""
        if connection_lost(exc, sftp):
            raise exc
        raise SourceUnavailable(f"SFTP: {what} ({exc}); try again later") from exc

    # -- release --------------------------------------------------------------------------

    @property
    def after_action(self) -> str:
        """The after-action in force: ``keep``, ``delete`` or ``move:<absolute DIR>``."""
        return f"move:{self._move_dir}" if self._after == "move" else self._after

    def release(
        self,
        path: str,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        expected_mtime: float | None = None,
    ) -> str:
        """Apply the after-action to an archived file; return what was done.

        ``"kept"``; ``"moved to <path>"`` (creating directories; an existing target is
        never overwritten, a ``.1``, ``.2`` … suffix is added before the extension);
        ``"deleted"``; or ``"already gone"`` when the file is not there.

        The file is released only if it is proven to hold the archived bytes: its size
        must be ``expected_size``, and with ``expected_sha256`` either its mtime is still
        ``expected_mtime`` (the file this run hashed) or its bytes are hashed again and
        match.  Otherwise it is a new upload under the same name and is left alone
        (``"kept: …"``).  Failures raise SourceUnavailable: the file stays and the next
        run tries again.
        """
        if self._after == "keep":
            return "kept"
        if not self.contains(path):
            logger.warning("SFTP release of %s refused: the path lies outside the drop", path)
            return "kept: the path lies outside the drop (never moved or deleted)"
        path = self._confined(path)
        description = self._connection.run(
            lambda sftp: self._release_once(
                sftp, path, expected_size, expected_sha256, expected_mtime
            ),
            what=f"release {path}",
        )
        logger.info("SFTP %s: %s", path, description)
        return description

    def _release_once(
        self,
        sftp: paramiko.SFTPClient,
        path: str,
        expected_size: int | None,
        expected_sha256: str | None,
        expected_mtime: float | None,
    ) -> str:
        try:
            attrs = sftp.lstat(path)
            if not stat.S_ISREG(attrs.st_mode or 0):
                return "kept: not a regular file (a symbolic link is never followed)"
            try:
                self._resolved_inside(sftp, path)
            except SourceOutsideDrop as exc:
                logger.warning("SFTP release refused: %s", exc)
                return "kept: the path lies outside the drop (never moved or deleted)"
            size = attrs.st_size
            if expected_size is not None and size != expected_size:
                return (
                    f"kept: the file changed since it was archived ({size} bytes now, "
                    f"{expected_size} archived)"
                )
            mtime = float(attrs.st_mtime or 0)
            if expected_mtime is not None and mtime == expected_mtime:
                pass  # the very file that was hashed: same size, same mtime
            elif expected_sha256 is not None:
                digest = self._hash(sftp, path, attrs)
                if digest != expected_sha256:
                    return (
                        f"kept: the file's bytes are not the archived ones (sha256 {digest} "
                        f"now, {expected_sha256} archived)"
                    )
            elif expected_mtime is not None:
                return (
                    f"kept: the file was modified since it was archived (mtime {mtime} now, "
                    f"{expected_mtime} when it was read)"
                )
            if self._after == "delete":
                sftp.remove(path)
                return "deleted"
            return f"moved to {self._move(sftp, path)}"
        except FileNotFoundError:
            return "already gone"
        except OSError as exc:
            verb = "delete" if self._after == "delete" else "move"
            self._translate(exc, sftp, f"cannot {verb} {path}; the file stays in the drop")

    @staticmethod
    def _hash(sftp: paramiko.SFTPClient, path: str, attrs: paramiko.SFTPAttributes) -> str:
        """The SHA-256 of the file's bytes now (read with read-ahead)."""
        digest = hashlib.sha256()
        with sftp.open(path, "rb") as handle:
            handle.prefetch(attrs.st_size, max_concurrent_requests=_READ_AHEAD)
            try:
                while piece := handle.read(_REQUEST_SIZE):
                    digest.update(piece)
            except EOFError as exc:  # a read-ahead request found EOF: the file shrank
                if connection_lost(exc, sftp):
                    raise
                return "(the file shrank while it was read)"
        return digest.hexdigest()

    def move_target(self, path: str) -> str:
        """Where ``move:DIR`` puts ``path``: DIR plus the path below the drop root."""
        if self._move_dir is None:
            raise ValueError("the after-action is not move:DIR")
        path = _normalise(path)
        if self.root == "." and not path.startswith(("/", "../")):
            relative = path
        elif path.startswith(self.root.rstrip("/") + "/"):
            relative = path[len(self.root.rstrip("/")) + 1 :]
        else:
            relative = posixpath.basename(path)
        return _join(self._move_dir, relative)

    def _move(self, sftp: paramiko.SFTPClient, path: str) -> str:
        target = self.move_target(path)
        self._makedirs(sftp, posixpath.dirname(target), for_path=path)
        stem, extension = posixpath.splitext(target)
        for n in range(_MAX_MOVE_SUFFIX):
            candidate = target if n == 0 else f"{stem}.{n}{extension}"
            if self._lexists(sftp, candidate):
                continue
            try:
                # Plain SFTP rename never replaces an existing target (unlike posix-rename).
                sftp.rename(path, candidate)
            except FileNotFoundError:
                raise
            except OSError:
                if self._lexists(sftp, candidate):
                    continue  # someone took the name between our stat and the rename
                raise
            return candidate
        raise SourceUnavailable(f"SFTP: no free name for {target} after {_MAX_MOVE_SUFFIX} tries")

    @staticmethod
    def _lexists(sftp: paramiko.SFTPClient, path: str) -> bool:
        try:
            sftp.lstat(path)
        except FileNotFoundError:
            return False
        return True

    def _makedirs(self, sftp: paramiko.SFTPClient, directory: str, *, for_path: str) -> None:
        missing: list[str] = []
        while directory not in ("", ".", "/"):
            try:
                sftp.stat(directory)
                break
            except FileNotFoundError:
                missing.append(directory)
                directory = posixpath.dirname(directory)
        for each in reversed(missing):
            try:
                sftp.mkdir(each)
            except OSError as exc:
                if not self._lexists(sftp, each):  # created meanwhile by someone else is fine
                    self._translate(
                        exc,
                        sftp,
                        f"cannot create {each} for {for_path}; the file stays in the drop",
                    )
