"""The witness (C2SP tlog-witness) as its own process over HTTP: every answer the spec
names, state that survives a restart, and one winner when two requests race."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import make_checkpoint
from tenios_io.custody.cosignature import (
    WitnessSigner,
    parse_witness_verifier,
    verify_cosignatures,
)
from tenios_io.witness.client import request_body
from tests.fixtures.cli import CliResult
from tests.fixtures.witness import WitnessKey, WitnessProcess

ORIGIN = "tenios-archive/archive/recordings"
LEAVES = [merkle.leaf_hash(f"event {n}".encode()) for n in range(40)]


def _note(log: signing.Signer, size: int, leaves: list[bytes] = LEAVES) -> bytes:
    root = merkle.root_hash(merkle.list_reader(leaves), size)
    return make_checkpoint(ORIGIN, size, root, log).note


def _proof(old: int, new: int, leaves: list[bytes] = LEAVES) -> list[bytes]:
    return merkle.consistency_proof(merkle.list_reader(leaves), old, new) if old else []


_HTTP = httpx.Client(timeout=30)


def _post(witness: WitnessProcess, body: bytes) -> httpx.Response:
    return _HTTP.post(f"{witness.url}/add-checkpoint", content=body)


@pytest.fixture
def log_key() -> signing.Signer:
    return signing.generate(ORIGIN)


@pytest.fixture
def witness(
    tmp_path: Path, log_key: signing.Signer, start_witness: Callable[..., WitnessProcess]
) -> WitnessProcess:
    return start_witness(tmp_path / "state", str(log_key.verifier))


def test_cosigns_a_growing_log_and_refuses_what_does_not_extend_it(
    witness: WitnessProcess, log_key: signing.Signer, witness_key: WitnessKey, tmp_path: Path
) -> None:
    first = _note(log_key, 10)
    answer = _post(witness, request_body(0, [], first))
    assert answer.status_code == 200, answer.text
    cosigned = first + answer.content
    assert set(verify_cosignatures(cosigned, [witness_key.verifier])) == {witness_key.verifier.name}

    grown = _note(log_key, 25)
    assert _post(witness, request_body(10, _proof(10, 25), grown)).status_code == 200
    # The same checkpoint again is cosigned again (a run that retries).
    assert _post(witness, request_body(25, [], grown)).status_code == 200

    # An old size that is not the latest cosigned: 409 with the size it knows.
    stale = _post(witness, request_body(10, _proof(10, 30), _note(log_key, 30)))
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "text/x.tlog.size" and stale.text == "25\n"

    # A rewritten history, re-signed with the log's own key: the proof cannot verify.
    forged = [*LEAVES[:5], merkle.leaf_hash(b"rewritten"), *LEAVES[6:]]
    refused = _post(witness, request_body(25, _proof(25, 30, forged), _note(log_key, 30, forged)))
    assert refused.status_code == 422, refused.text
    # ... and the same size with another root is a conflict; both are kept as evidence.
    same_size = _post(witness, request_body(25, [], _note(log_key, 25, forged)))
    assert same_size.status_code == 409 and same_size.text == "25\n"
    assert len(list((tmp_path / "state" / "refused").iterdir())) == 2


def test_unknown_log_bad_signature_and_malformed_requests(
    witness: WitnessProcess, log_key: signing.Signer
) -> None:
    stranger = signing.generate("someone-else")
    unknown = _post(witness, request_body(0, [], _note(stranger, 3)))
    assert unknown.status_code == 404
    # A line that claims the log's key but does not verify: 403.
    note = _note(log_key, 3)
    forged = note.replace(b"\n3\n", b"\n4\n")
    assert _post(witness, request_body(0, [], forged)).status_code == 403
    for body in (
        b"",
        b"old 01\n\n" + note,
        b"old 5\n\n" + note,  # old above the checkpoint's size
        b"old 0\n" + b"A" * 44 + b"\n\n" + note,  # a proof from 0
        b"old 2\nnot base64\n\n" + note,
        b"old 0\n\nnot a checkpoint\n",
        b"\xff\xfe",
    ):
        answer = _post(witness, body)
        assert answer.status_code == 400, (body, answer.text)
    assert _post(witness, b"old 0\n\n" + b"x" * 70_000).status_code == 413
    assert _HTTP.get(f"{witness.url}/add-checkpoint").status_code == 405
    assert _HTTP.post(f"{witness.url}/other", content=b"").status_code == 404


def test_state_survives_a_restart(witness: WitnessProcess, log_key: signing.Signer) -> None:
    assert _post(witness, request_body(0, [], _note(log_key, 12))).status_code == 200
    witness.restart()
    again = _post(witness, request_body(0, [], _note(log_key, 20)))
    assert again.status_code == 409 and again.text == "12\n"
    assert _post(witness, request_body(12, _proof(12, 20), _note(log_key, 20))).status_code == 200


def test_racing_requests_from_one_size_get_one_cosignature(
    witness: WitnessProcess, log_key: signing.Signer
) -> None:
    assert _post(witness, request_body(0, [], _note(log_key, 8))).status_code == 200
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def submit(size: int) -> None:
        body = request_body(8, _proof(8, size), _note(log_key, size))
        barrier.wait()
        statuses.append(_post(witness, body).status_code)

    threads = [threading.Thread(target=submit, args=(size,)) for size in range(30, 36)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]


def test_keygen_and_serve_usage_errors(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    key = tmp_path / "w.key"
    made = cli("witness", "keygen", "--name", "witness.example", "--output", str(key))
    assert made.exit_code == 0
    verifier = parse_witness_verifier(made.stdout.splitlines()[0])
    assert (
        verifier == WitnessSigner.read(key).verifier and stat.S_IMODE(key.stat().st_mode) == 0o600
    )
    secret = key.read_text().strip().rsplit("+", 1)[1]
    assert secret not in made.output
    again = cli("witness", "keygen", "--name", "witness.example", "--output", str(key))
    assert again.exit_code == 2 and "already exists" in again.words
    log = str(signing.generate("log").verifier)
    state = str(tmp_path / "state")
    for args, hint in (
        (["--key", str(key), "--state", state, "--log", "nonsense"], "--log"),
        (["--key", str(key), "--state", state, "--log", str(verifier)], "--log"),  # a witness key
        (["--key", str(key), "--state", state, "--log", log, "--listen", "nowhere"], "--listen"),
        (["--key", str(tmp_path / "none"), "--state", state, "--log", log], "--key"),
    ):
        refused = cli("witness", "serve", *args)
        assert refused.exit_code == 2 and hint in refused.words, refused.output
    refused = cli(
        "witness", "serve", "--key", str(key), "--state", state, "--log", log[:-4] + "AAAA"
    )
    assert refused.exit_code == 2 and secret not in refused.output
