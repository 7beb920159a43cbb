"""A sink for the benchmarks: hashes what it gets and keeps nothing (no disk I/O in the
measurement); truncate() starts over, as the pipeline's spool does."""

from __future__ import annotations

import hashlib


class HashingSink:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def write(self, data: bytes, /) -> int:
        self.digest.update(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return 0

    def truncate(self, size: int | None = None, /) -> int:
        self.digest = hashlib.sha256()
        return 0
