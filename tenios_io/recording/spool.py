"""Streaming SHA-256 into a spool file on disk, with memory bounded whatever the size.

A source writes a recording into a :class:`HashingSpool` (it is a
:class:`~tenios_io.recording.source.Sink`); the spool appends the bytes to a temporary
file while it computes their SHA-256 and size, and remembers the first bytes so
the audio type can be told from its magic bytes rather than from a name.
:meth:`HashingSpool.finish` freezes the result as a :class:`Spooled`, which the
archive store uploads from disk in parts.

The spool is append-only: the one other thing a source may do is start over —
``seek(0)`` and ``truncate()`` (in either order) — and that resets the digest and
the size, so a retried download is hashed from its first byte.

A run that spools many recordings takes its spools from :class:`SpoolFiles`, which
keeps each finished spool's file (renamed) for the next spool to overwrite, instead
of creating and deleting a file per recording.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import socket
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from tenios_io.exceptions import ConfigError, SpoolUnusable

__all__ = [
    "CHUNK_SIZE",
    "HashingSpool",
    "SpoolFiles",
    "Spooled",
    "check_spool_dir",
    "detect_content_type",
    "spool_stream",
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read per step when copying a stream (1 MiB)."""

_HEAD_BYTES = 12
"""Enough for every signature :func:`detect_content_type` knows (RIFF....WAVE)."""

_MPEG_BITRATE_BAD = 0x0F
_MPEG_RATE_RESERVED = 0x03


def detect_content_type(head: bytes) -> tuple[str, str]:
    """``(content type, extension)`` from a file's first bytes.

    WAV is ``RIFF`` <size> ``WAVE``; MP3 is an ``ID3`` tag or an MPEG audio frame
    header (11-bit frame sync ``0xFFE``, with the version, layer, bitrate and
    sample-rate fields not holding their reserved/invalid values, which keeps
    random binary from passing as audio).  Anything else is
    ``application/octet-stream`` / ``bin``.
    """
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav", "wav"
    if head[:3] == b"ID3":
        return "audio/mpeg", "mp3"
    if len(head) >= 3 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        version = (head[1] >> 3) & 0x03  # 01 is reserved
        layer = (head[1] >> 1) & 0x03  # 00 is reserved (and what AAC/ADTS uses)
        bitrate = head[2] >> 4
        rate = (head[2] >> 2) & 0x03
        if (
            version != 0x01
            and layer != 0x00
            and bitrate != _MPEG_BITRATE_BAD
            and rate != _MPEG_RATE_RESERVED
        ):
            return "audio/mpeg", "mp3"
    return "application/octet-stream", "bin"


@dataclass(frozen=True)
class Spooled:
    """A finished spool file: what was written, its SHA-256 (hex) and size, its detected type.

    The file belongs to the :class:`HashingSpool` that made it and is deleted (or,
    from :class:`SpoolFiles`, given back to be overwritten) when that spool is closed:
    read it only before.
    """

    path: Path
    sha256: str
    size: int
    content_type: str
    extension: str


SPOOL_SUFFIX = ".spool"
_SPOOL_NAME = re.compile(r"^tenios-(?P<host>[A-Za-z0-9.-]*)-(?P<pid>\d+)-[^/]*\.spool$")


def _spool_prefix() -> str:
    # Host and process in the name: a later run can tell a killed run's files from a
    # live worker's (a SIGKILL leaves no chance to delete them).
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:40]
    return f"tenios-{host}-{os.getpid()}-"


def check_spool_dir(spool_dir: str | os.PathLike[str] | None) -> None:
    """ConfigError naming TENIOS_SPOOL_DIR unless ``spool_dir`` (None: the system temp
    dir) is an existing directory this process can create files in — checked by
    creating one, as root passes any permission test.

    A missing directory is not created: a mistyped path would spool recordings onto
    whatever disk its first existing parent lives on (and fill it), unnoticed.
    """
    if spool_dir is None:
        return
    directory = Path(spool_dir)
    problem = None
    if not directory.exists():
        problem = "does not exist: create it (mkdir -p) or point TENIOS_SPOOL_DIR elsewhere"
    elif not directory.is_dir():
        problem = "is not a directory: point TENIOS_SPOOL_DIR at a directory"
    else:
        try:
            with tempfile.TemporaryFile(dir=directory, prefix=".tenios-archive-probe-"):
                pass
        except OSError as exc:
            problem = (
                f"is not writable ({exc.strerror or exc}): give this user write access "
                "or point TENIOS_SPOOL_DIR elsewhere"
            )
    if problem is not None:
        raise ConfigError(f"TENIOS_SPOOL_DIR {directory} {problem}", variable="TENIOS_SPOOL_DIR")


def remove_stale_spools(spool_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete spool files left by dead processes of this host in ``spool_dir`` (the
    system temp dir when None); return what was deleted.  A live process's files,
    other hosts' files and anything not named like a spool are left alone."""
    directory = Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir())
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:40]
    removed: list[Path] = []
    try:
        candidates = list(directory.iterdir())
    except OSError:
        return removed
    for path in candidates:
        match = _SPOOL_NAME.match(path.name)
        if match is None or match["host"] != host or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def remove_own_spools(spool_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete this process's spool files in ``spool_dir`` (the system temp dir when
    None): a run that ends without waiting for its workers (a second Ctrl-C) leaves
    none behind.  Returns what was deleted."""
    directory = Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    for path in directory.glob(f"{_spool_prefix()}*{SPOOL_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _new_spool_file(spool_dir: str | os.PathLike[str] | None) -> tuple[BinaryIO, Path]:
    try:
        fd, name = tempfile.mkstemp(prefix=_spool_prefix(), suffix=SPOOL_SUFFIX, dir=spool_dir)
    except OSError as exc:
        raise _unusable(exc, spool_dir) from exc
    return os.fdopen(fd, "wb"), Path(name)


def _unusable(exc: OSError, where: str | os.PathLike[str] | None) -> SpoolUnusable:
    """An OS error of the spool itself (disk full, directory gone or read-only): it says
    nothing about the recording being spooled, so it is not an error of the recording."""
    place = os.fspath(where) if where is not None else tempfile.gettempdir()
    why = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return SpoolUnusable(
        f"the spool directory {place} cannot be written ({why}): free space there or set "
        "TENIOS_SPOOL_DIR to a writable directory"
    )


def _remove(file: BinaryIO, path: Path) -> None:
    file.close()
    path.unlink(missing_ok=True)


KEEP_BYTES = 8 * 1024 * 1024
"""A spool file larger than this (8 MiB) is deleted rather than kept for reuse."""


class SpoolFiles:
    """Spool files kept between recordings, for the next :class:`HashingSpool` to overwrite.

    Why not a new temporary file per recording: creating one, filling it and deleting
    it costs the kernel about 90 µs of CPU per 256 KiB recording (page-cache pages and
    ext4 blocks allocated and freed, a directory entry made and removed), overwriting a
    kept file about 15 µs, and 8 threads creating and deleting files in one directory
    contend for it; the run is CPU-bound (issue 13).  The standard library's tempfile
    has no such reuse, so it is written here.

    A kept file keeps its name, so a :class:`Spooled` read after its spool was closed
    may name the next recording's bytes (it named no file before): the archive reads
    a spool only while it is open, and the upload carries the SHA-256 that was hashed
    while spooling (S3 refuses other bytes).  Renaming each file given back would make
    a stale path fail instead, but 8 threads renaming in one directory cost more than
    the reuse saves.  Names follow the spool pattern, so :func:`remove_own_spools` and
    :func:`remove_stale_spools` clean up kept files like any other.  Files larger than
    ``keep_bytes`` are deleted.  :meth:`close` (or garbage collection, or the
    interpreter's exit) deletes the kept files; spools in use are given back as
    usual and then deleted.  Thread-safe: one :class:`SpoolFiles` serves a run's threads.
    """

    def __init__(
        self, spool_dir: str | os.PathLike[str] | None = None, *, keep_bytes: int = KEEP_BYTES
    ) -> None:
        self._dir = Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir())
        self._keep_bytes = keep_bytes
        self._kept: list[Path] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _remove_kept, self._kept, self._lock, self._pid)

    def spool(self) -> HashingSpool:
        """A spool on a kept file if there is one, else on a new one."""
        return HashingSpool(files=self)

    @property
    def kept(self) -> int:
        """How many files are kept for reuse now."""
        with self._lock:
            return len(self._kept)

    def take(self) -> tuple[BinaryIO, Path]:
        """A kept file opened for writing from its start, or a new one (for HashingSpool)."""
        while True:
            with self._lock:
                # A forked child never takes its parent's files.
                path = self._kept.pop() if self._kept and os.getpid() == self._pid else None
            if path is None:
                return _new_spool_file(self._dir)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
            except OSError:  # removed meanwhile (remove_own_spools): try the next
                continue
            return os.fdopen(fd, "wb"), path

    def give(self, file: BinaryIO, path: Path) -> None:
        """Keep a spool's file for the next spool, or delete it (for HashingSpool)."""
        file.close()
        if os.getpid() == self._pid and self._small_enough(path):
            with self._lock:
                if self._finalizer.alive:
                    self._kept.append(path)
                    return
        path.unlink(missing_ok=True)

    def _small_enough(self, path: Path) -> bool:
        try:
            return os.stat(path).st_size <= self._keep_bytes
        except OSError:  # removed meanwhile (remove_own_spools)
            return False

    def close(self) -> None:
        """Delete the kept files; spools given back later are deleted too.  Idempotent."""
        self._finalizer()


def _remove_kept(kept: list[Path], lock: threading.Lock, pid: int) -> None:
    if os.getpid() != pid:  # a forked child's copy: the files are its parent's
        return
    with lock:
        paths = list(kept)
        kept.clear()
    for path in paths:
        path.unlink(missing_ok=True)


class HashingSpool:
    """A writable sink that appends to a temporary file while hashing (SHA-256) and counting.

    Use it as a context manager: the temporary file is deleted on exit (and, as a
    safety net, when the spool is garbage-collected), or given back to the
    :class:`SpoolFiles` it came from.  ``seek(0)`` + ``truncate()`` restarts it; any
    other seek or truncate that would make the hash disagree with the file raises
    :class:`io.UnsupportedOperation`.  The file is cut to the bytes written when the
    spool is finished.
    """

    def __init__(
        self, spool_dir: str | os.PathLike[str] | None = None, *, files: SpoolFiles | None = None
    ) -> None:
        """A new spool file in ``spool_dir`` (the system temp dir when None), or, with
        ``files``, one taken from there (in its directory) and given back on close."""
        if files is not None:
            self._file, self._path = files.take()
            self._finalizer = weakref.finalize(self, files.give, self._file, self._path)
        else:
            self._file, self._path = _new_spool_file(spool_dir)
            self._finalizer = weakref.finalize(self, _remove, self._file, self._path)
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._size = 0
        self._pos = 0
        self._spooled: Spooled | None = None

    # -- the Sink protocol --------------------------------------------------------------

    def write(self, data: bytes, /) -> int:
        """Append ``data``; the position must be at the end (the spool never rewrites)."""
        self._check_open()
        if self._pos != self._size:
            raise io.UnsupportedOperation(
                "HashingSpool only appends: call seek(0) and truncate() to start over"
            )
        view = memoryview(data)
        try:
            written = self._file.write(view)
        except OSError as exc:
            raise _unusable(exc, self._path.parent) from exc
        self._hash.update(view)
        if len(self._head) < _HEAD_BYTES:
            self._head += view[: _HEAD_BYTES - len(self._head)]
        self._size += written
        self._pos += written
        return written

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Move to the start (to restart) or to the end; nowhere else."""
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target not in (0, self._size):
            raise io.UnsupportedOperation(
                "HashingSpool can seek only to 0 (to restart) or to the end"
            )
        self._file.seek(target)
        self._pos = target
        return target

    def truncate(self, size: int | None = None, /) -> int:
        """Truncate to 0 (resetting digest and size), or to the current size (a no-op)."""
        self._check_open()
        target = self._pos if size is None else size
        if target == self._size:
            return target
        if target != 0:
            raise io.UnsupportedOperation(
                "HashingSpool can truncate only to 0 (to restart): seek(0) then truncate()"
            )
        # The file itself is cut at finish(): its blocks are overwritten, not freed.
        self._hash = hashlib.sha256()
        self._head.clear()
        self._size = 0
        return 0

    def tell(self) -> int:
        """The current position (the end of the data, except right after a restart)."""
        return self._pos

    def writable(self) -> bool:
        """Always true while open: lets io-aware callers treat the spool as a file."""
        return not self.closed

    # -- results --------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The spool file on disk."""
        return self._path

    @property
    def size(self) -> int:
        """Bytes written since the last restart."""
        return self._size

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes written since the last restart."""
        return self._hash.hexdigest()

    @property
    def closed(self) -> bool:
        """Whether the spool (and its file) is gone."""
        return not self._finalizer.alive

    def finish(self) -> Spooled:
        """Flush and close the file for writing; return what it holds (idempotent)."""
        if self._spooled is None:
            self._check_open()
            # A restart, or a reused file, leaves older bytes past the end until now.
            try:
                self._file.truncate(self._size)
                self._file.flush()
                self._file.close()
            except OSError as exc:
                raise _unusable(exc, self._path.parent) from exc
            content_type, extension = detect_content_type(bytes(self._head))
            self._spooled = Spooled(
                path=self._path,
                sha256=self._hash.hexdigest(),
                size=self._size,
                content_type=content_type,
                extension=extension,
            )
        return self._spooled

    def close(self) -> None:
        """Delete the spool file; safe to call more than once."""
        self._finalizer()

    def __enter__(self) -> HashingSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("finished" if self._spooled else "open")
        return f"<HashingSpool {self._path} {state} size={self._size}>"

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("the spool is closed (its file was deleted)")
        if self._spooled is not None:
            raise ValueError("the spool is finished; it cannot be written any more")


def spool_stream(stream: BinaryIO, spool_dir: str | os.PathLike[str] | None = None) -> HashingSpool:
    """Copy a readable binary stream into a new :class:`HashingSpool`, 1 MiB at a time.

    Returns the spool (not yet finished); if the copy fails the spool is deleted and
    the error propagates.
    """
    spool = HashingSpool(spool_dir)
    try:
        while chunk := stream.read(CHUNK_SIZE):
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return spool
