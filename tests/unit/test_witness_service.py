"""The witness's add-checkpoint checks in-process (the HTTP peer is tested in
tests/integration/test_witness.py): the origin bound to its first log key, a clock for
the cosignature's time, and state files that are not the witness's refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import make_checkpoint
from tenios_io.custody.cosignature import WitnessSigner, verify_cosignatures
from tenios_io.witness import StateError, Witness, WitnessState
from tenios_io.witness.client import request_body

ORIGIN = "example.com/log"
LEAVES = [merkle.leaf_hash(bytes([n])) for n in range(16)]


def _note(key: signing.Signer, size: int) -> bytes:
    return make_checkpoint(
        ORIGIN, size, merkle.root_hash(merkle.list_reader(LEAVES), size), key
    ).note


def _witness(tmp_path: Path, *logs: signing.Signer) -> tuple[Witness, WitnessSigner]:
    signer = WitnessSigner.generate("w.example")
    state = WitnessState(tmp_path / "state")
    return Witness(signer, [k.verifier for k in logs], state, clock=lambda: 1234.9), signer


def test_an_origin_stays_bound_to_the_key_that_signed_it_first(tmp_path: Path) -> None:
    first, second = signing.generate("log-a"), signing.generate("log-b")
    witness, signer = _witness(tmp_path, first, second)
    answer = witness.add_checkpoint(request_body(0, [], _note(first, 4)))
    assert answer.status == 200
    assert verify_cosignatures(_note(first, 4) + answer.body, [signer.verifier]) == {
        "w.example": 1234
    }
    proof = merkle.consistency_proof(merkle.list_reader(LEAVES), 4, 8)
    # Another configured key may not take over the origin.
    assert witness.add_checkpoint(request_body(4, proof, _note(second, 8))).status == 403
    assert witness.add_checkpoint(request_body(4, proof, _note(first, 8))).status == 200


def test_a_state_file_that_is_not_the_witnesses_is_refused(tmp_path: Path) -> None:
    log = signing.generate("log")
    witness, _ = _witness(tmp_path, log)
    assert witness.add_checkpoint(request_body(0, [], _note(log, 2))).status == 200
    (state_file,) = (tmp_path / "state").glob("*.json")
    state_file.write_text("{not json")
    with pytest.raises(StateError, match="not a witness state file"):
        witness.add_checkpoint(request_body(2, [], _note(log, 2)))
