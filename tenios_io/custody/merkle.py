"""RFC 6962 Merkle tree math and the C2SP tlog-tiles layout of its hashes.

The custody log is a Merkle tree over the sequenced custody events, hashed as
RFC 6962 (section 2.1) says: a leaf is ``SHA-256(0x00 || entry)``, an interior
node ``SHA-256(0x01 || left || right)``, and the hash of ``n`` leaves splits at the
largest power of two smaller than ``n``.  Inclusion and consistency proofs and
their verification follow RFC 9162 sections 2.1.3 and 2.1.4 (the same algorithms
Go's ``golang.org/x/mod/sumdb/tlog`` and Trillian implement).

Hand-written on purpose: the math is forty lines, no maintained Python package
implements both RFC 6962 proofs and the tlog-tiles layout, and an independent
implementation checks ours (the Go interop test).

Hashes are read through a :data:`NodeReader`: ``reader(level, index)`` is the hash
of the *complete* subtree of ``2**level`` leaves starting at leaf
``index * 2**level``.  Tiles (C2SP tlog-tiles, height 8) store the hashes of every
eighth level; :func:`tile_path` and :func:`entries_path` name them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
#: Tile height of C2SP tlog-tiles: a tile holds 2**8 hashes of one level.
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
#: SHA-256 of the empty string: the root of the empty tree (RFC 6962 2.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof is malformed or does not lead to the expected root."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def list_reader(leaves: Sequence[bytes]) -> NodeReader:
    """A NodeReader over leaf hashes held in memory (tests, small trees)."""

    def read(level: int, index: int) -> bytes:
        lo = index << level
        return _fold(leaves[lo : lo + (1 << level)])

    return read


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a complete subtree (len a power of two) from its leaf-level hashes."""
    row = list(hashes)
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def range_hash(reader: NodeReader, lo: int, hi: int) -> bytes:
    """RFC 6962 MTH of leaves ``[lo, hi)``, where ``lo`` is aligned as the recursion keeps it."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        return reader(n.bit_length() - 1, lo // n)
    k = _split(n)
    return node_hash(range_hash(reader, lo, lo + k), range_hash(reader, lo + k, hi))


def root_hash(reader: NodeReader, size: int) -> bytes:
    """The root of the tree of ``size`` leaves."""
    return range_hash(reader, 0, size)


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 6962 PATH(index, D[size]): the audit path of leaf ``index``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(range_hash(reader, lo + k, hi))
            hi = lo + k
        else:
            proof.append(range_hash(reader, lo, lo + k))
            lo = lo + k
    proof.reverse()  # the recursion appends from the root down; the path runs leaf-up
    return proof


def consistency_proof(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[new_size]): the tree of ``new_size`` extends ``old_size``."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(range_hash(reader, lo, hi))
            break
        k = _split(n)
        if m <= k:
            proof.append(range_hash(reader, lo + k, hi))
            hi = lo + k
        else:
            proof.append(range_hash(reader, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless ``leaf`` is leaf ``index`` of ``root``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("inclusion proof does not lead to the signed root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless ``new_root`` extends ``old_root``."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree size went from {old_size} down to {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node itself
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees are deep")
    if fr != old_root:
        raise ProofError(f"the tree of size {new_size} does not contain the tree of {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the root of size {new_size}")


# -- C2SP tlog-tiles layout -------------------------------------------------------------------


def _encode_index(n: int) -> str:
    """tlog-tiles index encoding: 3-digit groups, every group but the last prefixed 'x'."""
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``: the hash tile of tile-level ``level`` and index ``index``."""
    return f"tile/{level}/{_encode_index(index)}{_partial(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``: the entry bundle of leaves ``index*256 …``."""
    return f"tile/entries/{_encode_index(index)}{_partial(width)}"


def _partial(width: int) -> str:
    if not 0 < width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} outside 1..{TILE_WIDTH}")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_count(level: int, size: int) -> int:
    """How many hashes tile-level ``level`` holds in a tree of ``size`` leaves."""
    return size >> (level * TILE_HEIGHT)


def tiles_for(size: int) -> list[tuple[int, int, int]]:
    """Every tile (level, index, width) of a tree of ``size`` leaves, bottom level first."""
    tiles: list[tuple[int, int, int]] = []
    level = 0
    while (count := tile_count(level, size)) > 0:
        tiles.extend((level, i, TILE_WIDTH) for i in range(count // TILE_WIDTH))
        if count % TILE_WIDTH:
            tiles.append((level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles


def tile_reader(tile: Callable[[int, int], Sequence[bytes]]) -> NodeReader:
    """A NodeReader over tiles: ``tile(level, index)`` returns that tile's hashes.

    A node at tree level ``l`` lies in tile-level ``l // 8``; tiles store only their
    bottom row, the ``l % 8`` levels above it are hashed up (as Go's tlog does).
    """

    def read(level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = index << sub  # index of the bottom-row hash in tile-level coordinates
        hashes = tile(tile_level, first // TILE_WIDTH)
        offset = first % TILE_WIDTH
        row = hashes[offset : offset + (1 << sub)]
        if len(row) != 1 << sub:
            raise ProofError(f"tile {tile_level}/{first // TILE_WIDTH} is too short for the tree")
        return _fold(row)

    return read


def tile_hashes(body: bytes) -> list[bytes]:
    """Split a hash tile's bytes into its 32-byte hashes."""
    if len(body) % HASH_SIZE:
        raise ProofError(f"a hash tile of {len(body)} bytes is not a multiple of {HASH_SIZE}")
    return [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its length, 2 bytes big-endian."""
    out = bytearray()
    for entry in entries:
        if len(entry) > 0xFFFF:
            raise ValueError(f"a log entry of {len(entry)} bytes exceeds 65535")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(body: bytes) -> list[bytes]:
    """The entries of an entry bundle; ProofError if it is cut short."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(body):
        if pos + 2 > len(body):
            raise ProofError("entry bundle ends inside a length prefix")
        length = int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
        if pos + length > len(body):
            raise ProofError("entry bundle ends inside an entry")
        entries.append(body[pos : pos + length])
        pos += length
    return entries
