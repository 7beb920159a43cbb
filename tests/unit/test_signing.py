"""Signed notes (C2SP signed-note, Ed25519): the format Go's sumdb/note reads and writes.

The throwaway key and note below were produced by Go's ``note.GenerateKey`` and
``note.Sign`` (golang.org/x/mod 0.7.0); ours must parse the key, verify the note and
sign byte-identically.  The Go interop test checks the other direction.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from tenios_io.custody import signing

GO_SIGNER = "PRIVATE+KEY+go.example+7b22af3b+ATf+Z9Ea2q4PlRnpZqB8tKWRbGdGi/6wedS/HNdQgXuE"
GO_VERIFIER = "go.example+7b22af3b+ARCf2YGnA3po2NPsbK3bw8oE9v4sALQT8XLTKNK4OXd7"
GO_NOTE = (
    b"hello\n\n\xe2\x80\x94 go.example eyKvO0TeCXGSXMJU1N8KvhVii2WzWcQARV1e5oU/IY3teOC/"
    b"rrFmZJQqkurWkut2EfPPTtTpsa/RBnVGzgr9hqZJOQY=\n"
)


def test_go_keys_parse_and_sign_identically() -> None:
    signer = signing.parse_signer(GO_SIGNER)
    verifier = signing.parse_verifier(GO_VERIFIER)
    assert str(signer.verifier) == GO_VERIFIER
    assert signing.open_note(GO_NOTE, verifier) == "hello\n"
    assert signing.sign_note("hello\n", signer) == GO_NOTE  # Ed25519 is deterministic


def test_key_hash_is_sha256_of_name_newline_alg_key() -> None:
    verifier = signing.parse_verifier(GO_VERIFIER)
    digest = hashlib.sha256(b"go.example\n\x01" + verifier.public_key).digest()
    assert verifier.hash == digest[:4] == bytes.fromhex("7b22af3b")


def test_altered_note_wrong_key_and_malformed_keys_fail() -> None:
    verifier = signing.parse_verifier(GO_VERIFIER)
    with pytest.raises(signing.NoteError, match="altered"):
        signing.open_note(GO_NOTE.replace(b"hello", b"hellp"), verifier)
    other = signing.generate("go.example")
    with pytest.raises(signing.NoteError, match="not signed by"):
        signing.open_note(signing.sign_note("hello\n", other), verifier)
    with pytest.raises(signing.NoteError):
        signing.open_note(b"hello\n", verifier)
    with pytest.raises(signing.NoteError, match="hash does not match"):
        signing.parse_verifier(GO_VERIFIER.replace("7b22af3b", "7b22af3c"))
    with pytest.raises(signing.NoteError):
        signing.parse_verifier(GO_SIGNER)
    with pytest.raises(signing.NoteError):
        signing.parse_signer(GO_VERIFIER)


def test_signer_never_shows_its_key() -> None:
    signer = signing.parse_signer(GO_SIGNER)
    secret = GO_SIGNER.split("+", 4)[4]
    assert secret not in repr(signer) and secret not in str(signer)


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "custody.key"
    signer = signing.generate("archive.example")
    signing.write_signer(path, signer)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(signing.read_signer(path).verifier) == str(signer.verifier)
    with pytest.raises(FileExistsError):
        signing.write_signer(path, signing.generate("other"))
    assert str(signing.read_signer(path).verifier) == str(signer.verifier)
    (tmp_path / "bad.key").write_text("PRIVATE+KEY+x+00000000+AAAA\n")
    with pytest.raises(signing.NoteError) as caught:
        signing.read_signer(tmp_path / "bad.key")
    assert "AAAA" not in str(caught.value)
