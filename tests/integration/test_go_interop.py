"""Interoperability with an independent implementation: Go's golang.org/x/mod/sumdb/tlog
and sumdb/note check our signed checkpoint, tiles, entry bundles, an inclusion proof and a
consistency proof (goverifier/main.go, built offline from Debian's golang-golang-x-mod-dev).
A checkpoint carrying a witness's cosignature line (C2SP tlog-cosignature) still opens
with the log's key alone: Go's note.Open ignores the line of a key it was not given.

Needs the Debian packages golang-go and golang-golang-x-mod-dev (.ci/run installs them).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tenios_io.audit import write_checkpoint
from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import open_checkpoint
from tenios_io.custody.cosignature import WitnessSigner, add_signatures, cosign, verify_cosignatures
from tenios_io.custody.layout import log_prefix
from tenios_io.custody.tree import LogFiles, tree_reader
from tenios_io.ledger.schema import upgrade
from tests.integration.test_audit_support import make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SOURCE = Path(__file__).parent / "goverifier"
GOPATH = Path("/usr/share/gocode")


@pytest.fixture(scope="module")
def goverifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go verifier, built offline against the system's golang.org/x/mod."""
    go = shutil.which("go")
    assert go, "the Go toolchain is missing: apt-get install golang-go golang-golang-x-mod-dev"
    assert (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir(), (
        "golang.org/x/mod is missing: apt-get install golang-golang-x-mod-dev"
    )
    work = tmp_path_factory.mktemp("goverifier")
    shutil.copytree(SOURCE, work / "src")
    env = {
        **os.environ,
        "GOFLAGS": "-mod=mod",
        "GOPATH": str(GOPATH),
        "GOPROXY": "off",
        "GOCACHE": str(work / "cache"),
        "GOMODCACHE": str(work / "modcache"),
        "CGO_ENABLED": "0",
    }
    binary = work / "goverifier"
    subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=work / "src",
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return binary


@dataclass
class GoCase:
    signer: signing.Signer
    logdir: Path
    checks: Path
    old: int
    new: int


@pytest.fixture
def case(
    sqlite_url: str, s3_client: S3Client, locked_bucket: str, tmp_path: Path
) -> Iterator[GoCase]:
    upgrade(sqlite_url)
    world = make_world(sqlite_url, s3_client, locked_bucket)
    signer = signing.generate("archive.test")
    world.archive(3)
    write_checkpoint(world.ledger, world.store, signer=signer)
    world.archive(45)  # past one full tile: full and partial tiles at levels 0 and 1
    write_checkpoint(world.ledger, world.store, signer=signer)
    files = LogFiles(world.store, log_prefix(world.store.prefix))
    latest = open_checkpoint(files.require("checkpoint"), signer.verifier)
    sizes = sorted(
        int(o.key.rsplit("/", 1)[-1]) for o in world.store.iter_objects(files.key("checkpoints/"))
    )
    old, new = sizes[0], latest.size
    assert new > merkle.TILE_WIDTH > old > 0

    logdir = tmp_path / "log"
    for obj in world.store.iter_objects(files.prefix):
        target = logdir / obj.key[len(files.prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files.require(obj.key[len(files.prefix) :]))
    reader = tree_reader(files, new)
    inclusion = []
    for index in (0, old - 1, merkle.TILE_WIDTH - 1, merkle.TILE_WIDTH, new - 1):
        entry = files.bundle(index // merkle.TILE_WIDTH, min(256, new - index // 256 * 256))[
            index % merkle.TILE_WIDTH
        ]
        proof = merkle.inclusion_proof(reader, index, new)
        inclusion.append(
            {
                "index": index,
                "entry": base64.b64encode(entry).decode(),
                "proof": [base64.b64encode(h).decode() for h in proof],
            }
        )
    checks = tmp_path / "checks.json"
    checks.write_text(
        json.dumps(
            {
                "old_checkpoint": f"checkpoints/{old:020d}",
                "consistency": [
                    base64.b64encode(h).decode() for h in merkle.consistency_proof(reader, old, new)
                ],
                "inclusion": inclusion,
            }
        )
    )
    yield GoCase(signer, logdir, checks, old, new)
    world.ledger.engine.dispose()


def _run(binary: Path, key: str, case: GoCase) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), key, str(case.logdir), str(case.checks)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_go_verifies_our_checkpoint_tiles_and_proofs(goverifier: Path, case: GoCase) -> None:
    result = _run(goverifier, str(case.signer.verifier), case)
    assert result.returncode == 0, result.stderr
    assert f"{case.new} leaves, 5 inclusion proofs, consistent with {case.old}" in result.stdout
    assert "signature lines of other keys ignored: 0" in result.stdout


def test_go_opens_a_cosigned_checkpoint_with_the_log_key_alone(
    goverifier: Path, case: GoCase
) -> None:
    latest = case.logdir / "checkpoint"
    note = latest.read_bytes()
    body = signing.split_note(note)[0].decode()
    witnesses = [WitnessSigner.generate(f"witness-{n}.example") for n in range(2)]
    cosigned = add_signatures(
        note, [cosign(body, w, 1_700_000_000 + n) for n, w in enumerate(witnesses)]
    )
    assert len(verify_cosignatures(cosigned, [w.verifier for w in witnesses])) == 2
    latest.write_bytes(cosigned)
    result = _run(goverifier, str(case.signer.verifier), case)
    assert result.returncode == 0, result.stderr
    assert "signature lines of other keys ignored: 2" in result.stdout
    # The log's own signature is still what Go checks: an altered body fails.
    latest.write_bytes(cosigned.replace(b"\n" + str(case.new).encode() + b"\n", b"\n1\n", 1))
    altered = _run(goverifier, str(case.signer.verifier), case)
    assert altered.returncode == 1


def test_go_rejects_another_key_a_bad_proof_and_a_replaced_tile(
    goverifier: Path, case: GoCase
) -> None:
    other = _run(goverifier, str(signing.generate("archive.test").verifier), case)
    assert other.returncode == 1 and "verifier" in other.stderr.lower()

    key = str(case.signer.verifier)
    checks = json.loads(case.checks.read_text())
    good = json.dumps(checks)
    checks["inclusion"][2]["proof"][0] = base64.b64encode(bytes(32)).decode()
    case.checks.write_text(json.dumps(checks))
    bad_inclusion = _run(goverifier, key, case)
    assert bad_inclusion.returncode == 1 and "inclusion proof" in bad_inclusion.stderr

    checks = json.loads(good)
    checks["consistency"][0] = base64.b64encode(bytes(32)).decode()
    case.checks.write_text(json.dumps(checks))
    bad_consistency = _run(goverifier, key, case)
    assert bad_consistency.returncode == 1 and "consistency" in bad_consistency.stderr

    case.checks.write_text(good)
    tile = case.logdir / "tile/0/000"
    tile.write_bytes(bytes(len(tile.read_bytes())))
    replaced = _run(goverifier, key, case)
    assert replaced.returncode == 1, replaced.stdout


def test_go_verifies_our_tlog_proofs_and_rejects_a_tampered_one(
    goverifier: Path, sqlite_url: str, s3_client: S3Client, locked_bucket: str, tmp_path: Path
) -> None:
    """`audit prove`'s files, parsed in Go from the tlog-proof text and checked with
    note.Open (the log key; a witness's cosignature line beside it is ignored) and
    tlog.CheckRecord, past a full tile so the proofs cross tile levels."""
    from tenios_io.audit.prove import build_proofs, write_proofs
    from tenios_io.custody.cosignature import WitnessSigner, add_signatures, cosign

    upgrade(sqlite_url)
    world = make_world(sqlite_url, s3_client, locked_bucket)
    signer = signing.generate("archive.test")
    ids = world.archive(45)
    write_checkpoint(world.ledger, world.store, signer=signer)
    files = LogFiles(world.store, log_prefix(world.store.prefix))
    note = files.require("checkpoint")
    body = note[: note.index(b"\n\n") + 1].decode()
    witness = WitnessSigner.generate("w.audit.example")
    cosigned = add_signatures(note, [cosign(body, witness, 1_765_000_000)])
    world.s3.put_object(Bucket=world.bucket, Key=files.key("checkpoint"), Body=cosigned)
    folders = []
    for n, rec in enumerate((ids[0], ids[-1])):
        proofs = build_proofs(world.ledger, world.store, rec)
        assert proofs.tree_size > merkle.TILE_WIDTH
        folders += write_proofs(proofs, tmp_path / f"proofs{n}")
    world.ledger.engine.dispose()

    key = str(signer.verifier)
    run = [str(goverifier), "proof", key, *map(str, folders)]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert f"ok: {len(folders)} tlog-proofs" in ok.stdout

    lines = folders[-1].read_bytes().split(b"\n")
    lines[3] = base64.b64encode(bytes(32))
    folders[-1].write_bytes(b"\n".join(lines))
    bad = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and "inclusion proof" in bad.stderr
    other = str(signing.generate("archive.test").verifier)
    wrong = subprocess.run(
        [str(goverifier), "proof", other, str(folders[0])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1 and "checkpoint" in wrong.stderr
