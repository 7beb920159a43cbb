"""The custody log's tree state, read from and written to the bucket's tiles.

The tree state lives in the bucket itself, as in Tessera: to extend a tree of
``size`` leaves one needs only its right edge — the partial tile of each tile level
and the partial entry bundle — because every full tile is final.  So the sequencer
does no Merkle work at all and the ledger needs no tree table (integration stays as
fast as it was); the log is extended when a run writes its checkpoint, reading the
edge (a handful of small objects), hashing only the new events and writing only new
tiles.  Before extending, the edge is checked against the latest checkpoint's root,
so a tampered tile is refused rather than built upon.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tenios_io.custody import merkle
from tenios_io.exceptions import VerificationFailed

if TYPE_CHECKING:  # a type only: reading a checkpoint needs no boto3 (`ledger show`)
    from tenios_io.store import ArchiveStore

W = merkle.TILE_WIDTH


class LogFiles:
    """Reads the log's objects from a store (``name`` relative to the log prefix)."""

    def __init__(self, store: ArchiveStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    def read(self, name: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        buffer = io.BytesIO()
        try:
            self.store.download(self.key(name), buffer)
        except VerificationFailed:  # the store's word for 404
            return None
        return buffer.getvalue()

    def require(self, name: str) -> bytes:
        body = self.read(name)
        if body is None:
            raise merkle.ProofError(f"{self.key(name)} is missing from the bucket")
        return body

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        hashes = merkle.tile_hashes(self.require(merkle.tile_path(level, index, width)))
        if len(hashes) != width:
            raise merkle.ProofError(
                f"{self.key(merkle.tile_path(level, index, width))} holds {len(hashes)} "
                f"hashes, its name says {width}"
            )
        return hashes

    def bundle(self, index: int, width: int) -> list[bytes]:
        entries = merkle.decode_bundle(self.require(merkle.entries_path(index, width)))
        if len(entries) != width:
            raise merkle.ProofError(
                f"{self.key(merkle.entries_path(index, width))} holds {len(entries)} "
                f"entries, its name says {width}"
            )
        return entries


def tile_width(level: int, index: int, size: int) -> int:
    """The width of tile ``(level, index)`` in a tree of ``size`` leaves (0: none)."""
    count = merkle.tile_count(level, size)
    return max(0, min(W, count - index * W))


def tree_reader(files: LogFiles, size: int) -> merkle.NodeReader:
    """A NodeReader over the bucket's tiles of a tree of ``size`` leaves (tiles cached)."""
    cache: dict[tuple[int, int], list[bytes]] = {}

    def tile(level: int, index: int) -> list[bytes]:
        if (level, index) not in cache:
            width = tile_width(level, index, size)
            if width == 0:
                raise merkle.ProofError(f"tile {level}/{index} lies outside a tree of {size}")
            cache[(level, index)] = files.tile(level, index, width)
        return cache[(level, index)]

    return merkle.tile_reader(tile)


@dataclass
class TreeEdge:
    """The right edge of a tree: what extending it needs."""

    size: int = 0
    rows: list[list[bytes]] = field(default_factory=list)
    """``rows[level]``: the hashes in tile-level ``level``'s partial tile."""
    entries: list[bytes] = field(default_factory=list)
    """The entries of the partial entry bundle."""

    def append(self, entry: bytes, emit: Callable[[str, bytes], None]) -> None:
        """Add one entry; ``emit(path, body)`` each entry bundle and tile it completes."""
        index = self.size
        self.size += 1
        self.entries.append(entry)
        if len(self.entries) == W:
            emit(merkle.entries_path(index // W), merkle.encode_bundle(self.entries))
            self.entries = []
        node, level = merkle.leaf_hash(entry), 0
        while True:
            if len(self.rows) <= level:
                self.rows.append([])
            row = self.rows[level]
            row.append(node)
            if len(row) < W:
                return
            completed = merkle.tile_count(level, self.size) // W - 1
            emit(merkle.tile_path(level, completed), b"".join(row))
            node = merkle.range_hash(merkle.list_reader(row), 0, W)
            self.rows[level] = []
            level += 1

    def partials(self) -> list[tuple[str, bytes]]:
        """The partial tiles and bundle of the current size."""
        out: list[tuple[str, bytes]] = []
        if self.entries:
            out.append(
                (
                    merkle.entries_path(self.size // W, len(self.entries)),
                    merkle.encode_bundle(self.entries),
                )
            )
        for level, row in enumerate(self.rows):
            if row:
                index = merkle.tile_count(level, self.size) // W
                out.append((merkle.tile_path(level, index, len(row)), b"".join(row)))
        return out

    def root(self) -> bytes:
        """The tree's root: every node it needs lies in the edge's partial tiles."""

        def tile(level: int, index: int) -> Sequence[bytes]:
            if index != merkle.tile_count(level, self.size) // W:
                raise merkle.ProofError("the root needs a tile outside the right edge")
            return self.rows[level]

        return merkle.root_hash(merkle.tile_reader(tile), self.size)


def load_edge(files: LogFiles, size: int) -> TreeEdge:
    """The right edge of the bucket's tree of ``size`` leaves (ProofError if incomplete)."""
    edge = TreeEdge(size=size)
    level = 0
    while (count := merkle.tile_count(level, size)) > 0:
        width = count % W
        edge.rows.append(files.tile(level, count // W, width) if width else [])
        level += 1
    if size % W:
        edge.entries = files.bundle(size // W, size % W)
        if [merkle.leaf_hash(e) for e in edge.entries] != edge.rows[0]:
            raise merkle.ProofError(
                f"entry bundle {merkle.entries_path(size // W, size % W)} does not hash to its tile"
            )
    return edge
