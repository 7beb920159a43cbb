"""Writing files so that a reader never sees half of one; reading a small file whose
size nobody promised (a key file set to ``/dev/zero``) in bounded memory."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_text_file(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text file written under a temporary name beside ``path`` and renamed into
    place only when the block completes; on any error nothing is left behind."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


#: A key file (custody signer, SFTP private key) is a few KiB at most.
KEY_FILE_LIMIT = 64 * 1024
#: known_hosts and a --config TOML file: generous, but a file, not a disk.
TEXT_FILE_LIMIT = 16 * 1024 * 1024


class FileTooLarge(ValueError):
    """A file meant to be small is larger than its limit (or endless, like /dev/zero)."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(f"{path} is larger than {limit:,} bytes (the limit for this file)")
        self.path = path
        self.limit = limit


def read_capped(path: Path, limit: int) -> bytes:
    """The whole of ``path``, or FileTooLarge once more than ``limit`` bytes have been
    read: never more than ``limit + 1`` bytes in memory, whatever the file (its size
    from ``stat`` is no help: /dev/zero and pipes say 0).  OSError as ``open`` raises it."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(path, limit)
    return data


def sha256_file(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file, read 1 MiB at a time (bounded memory)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
