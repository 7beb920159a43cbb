"""Witness cosignatures (C2SP tlog-cosignature, Ed25519 cosignature/v1).

Known answers from outside the project: a public witness's verifier key (its key id
is SHA-256(name || 0x0A || 0x04 || key)[:4]), and the timestamps inside the spec's
own example line and transparency-dev/formats' test line.  The signatures are checked
against a second, minimal implementation written here from the spec text alone
(:func:`spec_verify`), which imports nothing of ours.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import struct
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tenios_io.custody import signing
from tenios_io.custody.cosignature import (
    WitnessPolicy,
    WitnessSigner,
    add_signatures,
    cosign,
    parse_witness_verifier,
    verify_cosignatures,
)

# A witness on the public witness network (transparency-dev/formats' tests use it).
REMORA = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
# The cosignature line of the tlog-cosignature spec's example (time 1679315147).
SPEC_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def spec_verify(vkey: str, body: bytes, line: str) -> int:
    """cosignature/v1 from the C2SP text alone: the line's timestamp if it verifies."""
    name, key_id_hex, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 0x04 and len(key) == 33
    assert hashlib.sha256(name.encode() + b"\n\x04" + key[1:]).digest()[:4].hex() == key_id_hex
    prefix = f"\u2014 {name} "
    assert line.startswith(prefix) and line.endswith("\n")
    raw = base64.b64decode(line[len(prefix) : -1])
    assert raw[:4].hex() == key_id_hex and len(raw) == 4 + 8 + 64
    timestamp = int.from_bytes(raw[4:12], "big")
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + body
    Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[12:], message)
    return timestamp


def _log_note(body: str = BODY) -> tuple[signing.Signer, bytes]:
    log = signing.generate("example.com/behind-the-sofa")
    return log, signing.sign_note(body, log)


def test_known_witness_key_parses_with_its_key_id() -> None:
    verifier = parse_witness_verifier(REMORA)
    assert verifier.name == "remora.n621.de"
    assert verifier.key_id == bytes.fromhex("da77ade7")
    assert str(verifier) == REMORA
    with pytest.raises(signing.NoteError, match="does not match"):
        parse_witness_verifier(REMORA.replace("da77ade7", "da77ade8"))
    # The same key bytes as a note (0x01) key are not a witness key, and vice versa.
    with pytest.raises(signing.NoteError, match="0x04"):
        parse_witness_verifier("go.example+7b22af3b+ARCf2YGnA3po2NPsbK3bw8oE9v4sALQT8XLTKNK4OXd7")
    with pytest.raises(signing.NoteError, match="Ed25519"):
        signing.parse_verifier(REMORA)


def test_spec_example_line_carries_its_timestamp_and_key_id() -> None:
    _, signatures = signing.split_note(("x\n\n" + SPEC_LINE + "\n").encode())
    (name, raw) = signatures[0]
    assert name == "witness.example.com/w1"
    assert struct.unpack(">Q", raw[4:12]) == (1679315147,)
    formats_line = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFi"
        "EBYJXORmnFBOBA=="
    )
    assert struct.unpack(">Q", formats_line[4:12]) == (1727964367,)


def test_cosign_verifies_with_the_spec_implementation_and_ours() -> None:
    witness = WitnessSigner.generate("witness.example.com/w1")
    line = cosign(BODY, witness, 1679315147)
    assert line.startswith("\u2014 witness.example.com/w1 ") and line.endswith("\n")
    assert spec_verify(str(witness.verifier), BODY.encode(), line) == 1679315147
    log, note = _log_note()
    cosigned = add_signatures(note, [line])
    assert verify_cosignatures(cosigned, [witness.verifier]) == {
        "witness.example.com/w1": 1679315147
    }
    # The log's own signature still opens, the cosignature line is ignored by it.
    assert signing.open_note(cosigned, log.verifier) == BODY


def test_a_forged_or_misplaced_cosignature_is_refused() -> None:
    witness = WitnessSigner.generate("w1")
    _, note = _log_note()
    line = cosign(BODY, witness, 1700000000)
    other_body = BODY.replace("20852163", "20852164")
    with pytest.raises(InvalidSignature):
        spec_verify(str(witness.verifier), other_body.encode(), line)
    _, other_note = _log_note(other_body)
    with pytest.raises(signing.NoteError, match="does not verify"):
        verify_cosignatures(add_signatures(other_note, [line]), [witness.verifier])
    # A different time in the line than the one signed does not verify either.
    name, _, encoded = line[2:].strip().partition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[11] ^= 1
    tampered = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(signing.NoteError, match="does not verify"):
        verify_cosignatures(add_signatures(note, [tampered]), [witness.verifier])


def test_unknown_witness_lines_are_ignored() -> None:
    known, stranger = WitnessSigner.generate("known"), WitnessSigner.generate("stranger")
    _, note = _log_note()
    cosigned = add_signatures(note, [cosign(BODY, stranger, 5)])
    assert verify_cosignatures(cosigned, [known.verifier]) == {}
    # A stranger using a known name but another key is ignored too (the key id differs).
    impostor = WitnessSigner.generate("known")
    assert (
        verify_cosignatures(add_signatures(note, [cosign(BODY, impostor, 5)]), [known.verifier])
        == {}
    )


def test_policy_counts_valid_cosignatures_against_the_quorum() -> None:
    a, b, c = (WitnessSigner.generate(n) for n in ("a", "b", "c"))
    _, note = _log_note()
    cosigned = add_signatures(note, [cosign(BODY, a, 10), cosign(BODY, c, 12)])
    policy = WitnessPolicy((a.verifier, b.verifier, c.verifier), quorum=2)
    result = policy.check(cosigned)
    assert result.satisfied and result.witnessed == {"a": 10, "c": 12} and result.missing == ("b",)
    strict = WitnessPolicy((a.verifier, b.verifier, c.verifier), quorum=3).check(cosigned)
    assert not strict.satisfied and "2 of 3" in strict.describe() and "b" in strict.describe()
    with pytest.raises(ValueError, match="quorum"):
        WitnessPolicy((a.verifier,), quorum=2)
    with pytest.raises(ValueError, match="share a name"):
        WitnessPolicy((a.verifier, WitnessSigner.generate("a").verifier), quorum=1)


def test_add_signatures_keeps_one_line_per_key() -> None:
    a = WitnessSigner.generate("a")
    _, note = _log_note()
    once = add_signatures(note, [cosign(BODY, a, 10)])
    assert add_signatures(once, [cosign(BODY, a, 11)]) == once
    assert add_signatures(once, []) == once
    assert once.count(b"\xe2\x80\x94 a ") == 1
    for bad in ("not a line", "\u2014 a !!!", "\u2014 a " + cosign(BODY, a, 1)):
        with pytest.raises(signing.NoteError):
            add_signatures(note, [bad])


def test_signer_key_file_round_trips_with_mode_0600_and_never_shows(tmp_path: Path) -> None:
    signer = WitnessSigner.generate("acme-audit")
    path = tmp_path / "witness.key"
    signer.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = WitnessSigner.read(path)
    assert loaded.verifier == signer.verifier
    secret = signer.key_text().rsplit("+", 1)[1]
    assert secret not in repr(signer) and secret not in str(signer)
    with pytest.raises(FileExistsError):
        signer.write(path)
    path.write_text("PRIVATE+KEY+x+00000000+" + secret + "\n")
    with pytest.raises(signing.NoteError) as caught:
        WitnessSigner.read(path)
    assert secret not in str(caught.value) and str(path) in str(caught.value)
