"""C2SP tlog-proof: the text format, the four verification steps, and the tamper cases,
each failing at its named step.

:func:`spec_check` is a second verifier written here from the spec texts alone
(tlog-proof, signed-note, RFC 6962 2.1.1 / RFC 9162 2.1.3.2) that imports nothing of
ours: every proof :mod:`tenios_io.custody.tlogproof` accepts it accepts, and the
tampered ones it refuses.  (Go's ``sumdb/tlog.CheckRecord`` checks them too:
tests/integration/test_go_interop.py.)
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tenios_io.custody import merkle, signing
from tenios_io.custody.chain import canonical_json
from tenios_io.custody.checkpoints import make_checkpoint
from tenios_io.custody.cosignature import WitnessPolicy, WitnessSigner, add_signatures, cosign
from tenios_io.custody.tlogproof import (
    HEADER,
    ProofFailed,
    ProofKeys,
    TlogProof,
    format_proof,
    parse_proof,
    verify_proof,
)

ORIGIN = "tenios-archive/bucket/recordings"
SIZE = 13


def _entry(seq: int) -> bytes:
    event = {
        "seq": seq,
        "recording_uuid": f"00000000-0000-4000-8000-{seq:012d}",
        "event": "archived" if seq % 3 == 0 else "registered",
        "actor": "test",
        "occurred_at": "2026-03-01T02:00:00.000000Z",
        "details": {"sha256": "ab" * 32, "size_bytes": seq * 100},
    }
    return canonical_json(event).encode()


def _spec_leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _spec_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _spec_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1: MTH of a list, k the largest power of two smaller than n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _spec_node(_spec_root(leaves[:k]), _spec_root(leaves[k:]))


def spec_check(text: bytes, log_vkey: str, witness_vkeys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A tlog-proof checked from the spec texts alone; AssertionError / InvalidSignature
    when it does not verify.  Returns the entry (the ``extra`` line) as JSON."""
    head, _, note = text.partition(b"\n\n")
    lines = head.decode().split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("extra ")
    entry = base64.b64decode(lines[1][6:], validate=True)
    assert lines[2].startswith("index ")
    index = int(lines[2][6:])
    path = [base64.b64decode(line, validate=True) for line in lines[3:]]
    # signed-note: text, a blank line, signature lines "— name base64(keyhash||sig)"
    cut = note.decode().rindex("\n\n") + 1
    body, signatures = note[:cut], note.decode()[cut + 1 :].splitlines()
    name, key_hash, key_b64 = log_vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() == key_hash
    (line,) = [s for s in signatures if s.startswith(f"\u2014 {name} ")]
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4].hex() == key_hash
    Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], body)
    for vkey in witness_vkeys:
        wname, wid, wkey_b64 = vkey.split("+", 2)
        wkey = base64.b64decode(wkey_b64)
        (wline,) = [s for s in signatures if s.startswith(f"\u2014 {wname} ")]
        wraw = base64.b64decode(wline.split(" ")[2])
        assert wraw[:4].hex() == wid
        stamp = int.from_bytes(wraw[4:12], "big")
        message = b"cosignature/v1\ntime " + str(stamp).encode() + b"\n" + body
        Ed25519PublicKey.from_public_bytes(wkey[1:]).verify(wraw[12:], message)
    origin, size_text, root_b64 = body.decode().split("\n")[:3]
    size, root = int(size_text), base64.b64decode(root_b64)
    # RFC 9162 2.1.3.2: verify the inclusion proof
    assert index < size
    fn, sn, r = index, size - 1, _spec_leaf(entry)
    for p in path:
        assert sn != 0
        if fn % 2 == 1 or fn == sn:
            r = _spec_node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = _spec_node(r, p)
        fn, sn = fn // 2, sn // 2
    assert sn == 0 and r == root
    assert origin == ORIGIN
    return dict(json.loads(entry))


class Log:
    """A log of SIZE custody events, signed, cosigned by two witnesses of three."""

    def __init__(self) -> None:
        self.entries = [_entry(seq) for seq in range(1, SIZE + 1)]
        self.reader = merkle.list_reader([merkle.leaf_hash(e) for e in self.entries])
        root = merkle.root_hash(self.reader, SIZE)
        assert root == _spec_root([_spec_leaf(e) for e in self.entries])
        self.log = signing.generate(ORIGIN)
        self.witnesses = [WitnessSigner.generate(f"witness{n}.example") for n in (1, 2, 3)]
        body = make_checkpoint(ORIGIN, SIZE, root, None).note.decode()
        note = make_checkpoint(ORIGIN, SIZE, root, self.log).note
        self.note = add_signatures(
            note, [cosign(body, w, 1_765_000_000 + n) for n, w in enumerate(self.witnesses[:2])]
        )

    def proof(self, index: int) -> TlogProof:
        hashes = tuple(merkle.inclusion_proof(self.reader, index, SIZE))
        return TlogProof(index, hashes, self.note, self.entries[index])

    def keys(self, quorum: int | None = None) -> ProofKeys:
        policy = None
        if quorum is not None:
            policy = WitnessPolicy(tuple(w.verifier for w in self.witnesses), quorum)
        return ProofKeys([self.log.verifier], ORIGIN, policy)


@pytest.fixture(scope="module")
def log() -> Log:
    return Log()


@pytest.mark.parametrize("index", [0, 1, 5, 7, 8, SIZE - 1])
def test_every_leaf_round_trips_and_verifies_here_and_from_the_spec(log: Log, index: int) -> None:
    text = format_proof(log.proof(index))
    assert text.startswith(f"{HEADER}\nextra ".encode())
    assert f"\nindex {index}\n".encode() in text and text.endswith(b"\n")
    assert parse_proof(text) == log.proof(index)
    proven = verify_proof(parse_proof(text), log.keys(quorum=2))
    assert proven.event["seq"] == index + 1 and proven.checkpoint.size == SIZE
    assert proven.witnesses is not None
    assert proven.witnesses.witnessed == {
        "witness1.example": 1_765_000_000,
        "witness2.example": 1_765_000_001,
    }
    vkeys = tuple(str(w.verifier) for w in log.witnesses[:2])
    assert spec_check(text, str(log.log.verifier), vkeys)["seq"] == index + 1


def _flip_hash(proof: TlogProof) -> TlogProof:
    first = bytearray(proof.hashes[0])
    first[0] ^= 1
    return replace(proof, hashes=(bytes(first), *proof.hashes[1:]))


TAMPERED = {
    "flipped proof hash": (lambda p, _log: _flip_hash(p), "inclusion"),
    "wrong index": (lambda p, _log: replace(p, index=p.index + 1), "inclusion"),
    "index past the tree": (lambda p, _log: replace(p, index=SIZE + 4), "inclusion"),
    "proof hash dropped": (lambda p, _log: replace(p, hashes=p.hashes[:-1]), "inclusion"),
    "entry edited": (
        lambda p, _log: replace(p, extra=p.extra.replace(b'"test"', b'"tesu"')),
        "inclusion",
    ),
    "entry missing": (lambda p, _log: replace(p, extra=None), "leaf"),
    "entry not an event": (lambda p, _log: replace(p, extra=b'{"seq":1}'), "leaf"),
    "checkpoint signed by another log key": (
        lambda p, log: replace(
            p,
            checkpoint=signing.sign_note(
                p.checkpoint[: p.checkpoint.index(b"\n\n") + 1].decode(),
                signing.generate(ORIGIN),
            ),
        ),
        "signature",
    ),
    "checkpoint root altered": (
        lambda p, _log: replace(p, checkpoint=p.checkpoint.replace(b"\n13\n", b"\n14\n", 1)),
        "signature",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_proof_fails_at_its_step_and_the_spec_check_agrees(log: Log, case: str) -> None:
    change, step = TAMPERED[case]
    proof = change(log.proof(5), log)
    with pytest.raises(ProofFailed) as failed:
        verify_proof(proof, log.keys(quorum=2))
    assert failed.value.step == step, failed.value
    if proof.extra is not None:
        with pytest.raises((AssertionError, InvalidSignature, ValueError)):
            spec_check(format_proof(proof), str(log.log.verifier))


def test_the_witness_policy_and_the_origin(log: Log) -> None:
    proof = log.proof(3)
    with pytest.raises(ProofFailed) as missing:
        verify_proof(proof, log.keys(quorum=3))
    assert missing.value.step == "witnesses" and "witness3.example" in str(missing.value)
    # a known witness's line that does not verify is refused, not ignored
    with pytest.raises(ProofFailed) as bad:
        verify_proof(
            replace(proof, checkpoint=_forge_witness1(proof.checkpoint)), log.keys(quorum=1)
        )
    assert bad.value.step == "witnesses" and "does not verify" in str(bad.value)
    # no policy: cosignatures are not required; another origin is refused
    assert verify_proof(proof, log.keys()).witnesses is None
    with pytest.raises(ProofFailed) as origin:
        verify_proof(proof, replace(log.keys(), origin="tenios-archive/other/recordings"))
    assert origin.value.step == "signature" and "origin" in str(origin.value)
    # the old and the rotated-to key: a checkpoint signed by either verifies
    other = signing.generate("x")
    assert verify_proof(proof, ProofKeys([other.verifier, log.log.verifier])).index == 3


def _forge_witness1(note: bytes) -> bytes:
    """A witness1 line with a wrong signature but canonical base64 of the right length."""
    body, signatures = signing.split_note(note)
    lines = []
    for name, raw in signatures:
        if name == "witness1.example":
            raw = raw[:12] + bytes(64)
        lines.append(f"\u2014 {name} {base64.b64encode(raw).decode()}\n")
    return body + b"\n" + "".join(lines).encode()


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"c2sp.org/tlog-proof@v2\nindex 0\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 01\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex -1\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n" + base64.b64encode(bytes(32)) + b"\n\n",
        b"c2sp.org/tlog-proof@v1\nextra AA==\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex \xd9\xa1\n\nx\n",
    ],
)
def test_malformed_proofs_are_format_errors(text: bytes) -> None:
    with pytest.raises(ProofFailed) as failed:
        parse_proof(text)
    assert failed.value.step == "format"
