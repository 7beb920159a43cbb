"""RFC 6962 Merkle math: the published test vectors, proofs, and the tlog-tiles layout.

The leaves and roots are RFC 6962's test data as Certificate Transparency and
Trillian publish them; the proofs were produced by Go's golang.org/x/mod/sumdb/tlog
(an independent implementation) over the same leaves.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from tenios_io.custody import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (leaf index, tree size) -> proof, from Go's tlog.ProveRecord
INCLUSION = {
    (0, 8): [
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    ],
    (5, 8): [
        "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
        "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    ],
    (2, 3): ["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="],
    (6, 7): [
        "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    ],
    (3, 7): [
        "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
        "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
        "g327FS6bB5AQcX6E6GXaTrwPoZioBtWdMb8VrM7yLQ4=",
    ],
    (0, 1): [],
}
# (old size, new size) -> proof, from Go's tlog.ProveTree
CONSISTENCY = {
    (1, 8): [
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    ],
    (3, 7): [
        "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
        "B1Bqhf2d0vEg62lPhgEeW7RmLlxBWmKRcDPUqWJEh+c=",
        "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
        "g327FS6bB5AQcX6E6GXaTrwPoZioBtWdMb8VrM7yLQ4=",
    ],
    (4, 8): ["a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="],
    (6, 8): [
        "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
        "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    ],
    (2, 5): [
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
    ],
    (0, 8): [],
    (8, 8): [],
}


def _reader(size: int) -> merkle.NodeReader:
    return merkle.list_reader([merkle.leaf_hash(leaf) for leaf in LEAVES[:size]])


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_rfc6962_vectors(size: int) -> None:
    assert merkle.root_hash(_reader(size), size).hex() == ROOTS[size]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_match_go_and_verify(index: int, size: int) -> None:
    proof = merkle.inclusion_proof(_reader(size), index, size)
    assert proof == _b64(INCLUSION[(index, size)])
    root = bytes.fromhex(ROOTS[size])
    merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, root)


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_match_go_and_verify(old: int, new: int) -> None:
    proof = merkle.consistency_proof(_reader(new), old, new)
    assert proof == _b64(CONSISTENCY[(old, new)])
    merkle.verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_every_proof_of_every_small_tree_verifies() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    reader = merkle.list_reader(leaves)
    for size in range(1, 70):
        root = merkle.root_hash(reader, size)
        for index in range(size):
            proof = merkle.inclusion_proof(reader, index, size)
            merkle.verify_inclusion(leaves[index], index, size, proof, root)
        for old in range(size + 1):
            proof = merkle.consistency_proof(reader, old, size)
            merkle.verify_consistency(old, size, merkle.root_hash(reader, old), root, proof)


def test_a_wrong_leaf_root_or_proof_fails() -> None:
    reader = _reader(7)
    root = bytes.fromhex(ROOTS[7])
    proof = merkle.inclusion_proof(reader, 3, 7)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(b"other"), 3, 7, proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(LEAVES[3]), 4, 7, proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(LEAVES[3]), 3, 7, proof[:-1], root)
    tampered = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(LEAVES[3]), 3, 7, tampered, root)
    consistency = merkle.consistency_proof(_reader(8), 3, 8)
    with pytest.raises(merkle.ProofError, match="does not contain"):
        merkle.verify_consistency(
            3, 8, bytes.fromhex(ROOTS[2]), bytes.fromhex(ROOTS[8]), consistency
        )
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(8, 3, bytes.fromhex(ROOTS[8]), bytes.fromhex(ROOTS[3]), [])
    with pytest.raises(merkle.ProofError, match="different roots"):
        merkle.verify_consistency(3, 3, bytes.fromhex(ROOTS[3]), bytes.fromhex(ROOTS[2]), [])


def test_tile_paths_follow_c2sp_tlog_tiles() -> None:
    assert merkle.tile_path(0, 0) == "tile/0/000"
    assert merkle.tile_path(1, 1234067) == "tile/1/x001/x234/067"
    assert merkle.tile_path(0, 1234067, 5) == "tile/0/x001/x234/067.p/5"
    assert merkle.entries_path(5) == "tile/entries/005"
    assert merkle.entries_path(1000, 255) == "tile/entries/x001/000.p/255"
    with pytest.raises(ValueError):
        merkle.tile_path(0, 0, 0)


def test_tiles_for_a_size_and_reading_nodes_through_them() -> None:
    size = 256 * 256 + 256 * 3 + 7
    assert merkle.tiles_for(size) == [
        *[(0, i, 256) for i in range(259)],
        (0, 259, 7),
        *[(1, 0, 256)],
        (1, 1, 3),
        (2, 0, 1),
    ]
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    level8 = [merkle._fold(leaves[i : i + 256]) for i in range(0, size - 255, 256)]
    level16 = [merkle._fold(level8[i : i + 256]) for i in range(0, len(level8) - 255, 256)]
    rows = {0: leaves, 1: level8, 2: level16}

    def tile(level: int, index: int) -> list[bytes]:
        return rows[level][index * 256 : index * 256 + 256]

    via_tiles, direct = merkle.tile_reader(tile), merkle.list_reader(leaves)
    assert merkle.root_hash(via_tiles, size) == merkle.root_hash(direct, size)
    assert merkle.inclusion_proof(via_tiles, 65_000, size) == merkle.inclusion_proof(
        direct, 65_000, size
    )
    assert merkle.consistency_proof(via_tiles, 300, size) == merkle.consistency_proof(
        direct, 300, size
    )


def test_entry_bundles_round_trip_and_reject_truncation() -> None:
    entries = [b"", b"a", b"x" * 300]
    body = merkle.encode_bundle(entries)
    assert body[:2] == b"\x00\x00" and body[2:5] == b"\x00\x01a"
    assert merkle.decode_bundle(body) == entries
    with pytest.raises(merkle.ProofError):
        merkle.decode_bundle(body[:-1])
    with pytest.raises(ValueError):
        merkle.encode_bundle([b"x" * 70_000])
