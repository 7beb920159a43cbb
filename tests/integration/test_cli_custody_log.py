"""The custody log's commands through the real entry point: keygen, verify-bucket, prove,
check-proof (exit codes 0 ok, 1 problems found, 2 usage)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tenios_io.audit import write_checkpoint
from tenios_io.cli._common import console
from tenios_io.config import load_settings
from tenios_io.custody import merkle, signing
from tenios_io.custody.chain import canonical_json
from tenios_io.custody.checkpoints import make_checkpoint
from tenios_io.custody.cosignature import WitnessPolicy, WitnessSigner, add_signatures, cosign
from tenios_io.custody.layout import default_origin, log_prefix
from tenios_io.custody.tree import LogFiles, TreeEdge
from tenios_io.ledger.schema import upgrade
from tenios_io.publish.identity import bind_bucket
from tenios_io.store.keys import PROBE_NAME, manifest_prefix
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import (
    FORGERIES,
    AuditWorld,
    forge_version,
    hide_under_delete_marker,
    make_world,
    versions_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]


def test_keygen_writes_a_private_key_and_prints_only_the_verifier(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "custody.key"
    made = cli("audit", "keygen", "--name", "archive.example.com", "--output", str(path))
    assert made.exit_code == 0, made.output
    signer = signing.read_signer(path)
    verifier = str(signer.verifier)
    assert made.stdout.splitlines()[0] == verifier
    public = tmp_path / "custody.key.pub"  # for auditors and `verify-bucket --key FILE`
    assert public.read_text() == verifier + "\n"
    assert signing.parse_verifier(verifier).name == "archive.example.com"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # PRIVATE+KEY+name+hash+seed: the base64 seed may itself hold "+"
    secret = path.read_text().strip().split("+", 4)[4]
    assert secret not in made.output

    again = cli("audit", "keygen", "--name", "other", "--output", str(path))
    assert again.exit_code == 2 and "--output" in again.stderr and "overwrite" in again.stderr
    assert str(signing.read_signer(path).verifier) == verifier  # untouched
    bad = cli("audit", "keygen", "--name", "two words", "--output", str(tmp_path / "k2"))
    assert bad.exit_code == 2 and "--name" in bad.stderr and not (tmp_path / "k2").exists()


def test_custody_key_file_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TENIOS_CUSTODY_KEY_FILE", raising=False)
    assert load_settings().custody_key_file is None
    monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(tmp_path / "k"))
    assert load_settings().custody_key_file == tmp_path / "k"


# -- verify-bucket: the auditor's check, with the database deleted ----------------------------


@dataclass
class Logged:
    """An archive with two signed log checkpoints and its ledger deleted."""

    world: AuditWorld
    signer: signing.Signer
    ids: list[str]
    database: Path

    @property
    def key(self) -> str:
        return str(self.signer.verifier)

    def log_key(self, name: str) -> str:
        return log_prefix(self.world.store.prefix) + name

    def get(self, key: str) -> bytes:
        return self.world.s3.get_object(Bucket=self.world.bucket, Key=key)["Body"].read()

    def put(self, key: str, body: bytes, **extra: Any) -> None:
        self.world.s3.put_object(Bucket=self.world.bucket, Key=key, Body=body, **extra)

    def object_key(self, recording_uuid: str) -> str:
        """The key a recording was archived at (found by listing: there is no ledger)."""
        listed = self.world.s3.list_objects_v2(Bucket=self.world.bucket, Prefix="recordings/")
        return next(
            o["Key"]
            for o in listed["Contents"]
            if recording_uuid in o["Key"] and not o["Key"].endswith(".json")
        )

    def sizes(self) -> list[int]:
        listed = self.world.s3.list_objects_v2(
            Bucket=self.world.bucket, Prefix=self.log_key("checkpoints/")
        )
        return sorted(int(o["Key"].rsplit("/", 1)[-1]) for o in listed.get("Contents", []))


def _archive_and_forget(
    sqlite_url: str,
    s3_client: S3Client,
    bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    runs: int,
    preflight: bool = False,
) -> Iterator[Logged]:
    """``runs`` runs of two recordings, each ending with a signed checkpoint; then the
    ledger is deleted.  ``preflight``: the bucket check's probe and the ledger id too."""
    upgrade(sqlite_url)
    world = make_world(sqlite_url, s3_client, bucket)
    if preflight:
        world.store.check()
        bind_bucket(world.ledger, world.store)
    signer = signing.generate("archive.test")
    ids: list[str] = []
    for _ in range(runs):
        ids += world.archive(2)
        write_checkpoint(world.ledger, world.store, signer=signer)
    world.ledger.engine.dispose()
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    database.unlink()  # the auditor has no database
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": sqlite_url,
        "TENIOS_S3_BUCKET": bucket,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TENIOS_CUSTODY_KEY_FILE", raising=False)
    yield Logged(world, signer, ids, database)
    assert not database.exists()  # nothing opened a ledger


@pytest.fixture
def logged(
    sqlite_url: str,
    s3_client: S3Client,
    plain_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Logged]:
    yield from _archive_and_forget(
        sqlite_url, s3_client, plain_bucket, moto_server, monkeypatch, runs=2
    )


@pytest.fixture
def versioned(
    sqlite_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Logged]:
    """Three runs into a bucket with versioning and Object Lock, as in production: the
    latest checkpoint has three versions, everything else one."""
    yield from _archive_and_forget(
        sqlite_url, s3_client, locked_bucket, moto_server, monkeypatch, runs=3, preflight=True
    )


def _rewrite_history(logged: Logged) -> None:
    """Re-sign a log whose first entry was changed: valid signatures, history replaced."""
    files = LogFiles(logged.world.store, log_prefix(logged.world.store.prefix))
    old, new = logged.sizes()
    entries = files.bundle(0, new)
    event = json.loads(entries[0])
    event["actor"] = "someone else"
    entries[0] = canonical_json(event).encode()
    edge = TreeEdge()
    for entry in entries:
        edge.append(entry, lambda _path, _body: None)
    for path, body in edge.partials():
        logged.put(files.key(path), body)
    origin = default_origin(logged.world.bucket, logged.world.store.prefix)
    note = make_checkpoint(origin, new, edge.root(), logged.signer).note
    logged.put(logged.log_key(f"checkpoints/{new:020d}"), note)
    logged.put(logged.log_key("checkpoint"), note)
    assert old < new


def _tamper(logged: Logged, case: str) -> None:
    world, store = logged.world, logged.world.store
    new = logged.sizes()[-1]
    if case == "entry bundle edited":
        key = logged.log_key(merkle.entries_path(0, new))
        logged.put(key, logged.get(key).replace(b'"actor":"test"', b'"actor":"tesu"', 1))
    elif case == "tile replaced":
        logged.put(logged.log_key(merkle.tile_path(0, 0, new)), bytes(32 * new))
    elif case == "checkpoint re-signed with another key":
        other = signing.generate("archive.test")
        note = logged.get(logged.log_key("checkpoint"))
        body = note[: note.index(b"\n\n") + 1].decode()
        forged = signing.sign_note(body, other)
        logged.put(logged.log_key(f"checkpoints/{new:020d}"), forged)
        logged.put(logged.log_key("checkpoint"), forged)
    elif case == "history rewritten":
        _rewrite_history(logged)
    elif case in ("object bytes changed", "object deleted"):
        rec = logged.ids[1]
        key = next(
            o["Key"]
            for o in world.s3.list_objects_v2(Bucket=world.bucket, Prefix="recordings/")["Contents"]
            if rec in o["Key"] and not o["Key"].endswith(".json")
        )
        if case == "object deleted":
            world.s3.delete_object(Bucket=world.bucket, Key=key)
        else:
            head = world.s3.head_object(Bucket=world.bucket, Key=key)
            body = bytearray(logged.get(key))
            body[-1] ^= 0xFF
            logged.put(key, bytes(body), Metadata=head["Metadata"])
    elif case in ("manifest edited", "manifest names an event not in the log"):
        key = next(
            o["Key"]
            for o in world.s3.list_objects_v2(
                Bucket=world.bucket, Prefix=manifest_prefix("recordings")
            )["Contents"]
        )
        lines = [json.loads(line) for line in logged.get(key).decode().splitlines()]
        if case == "manifest edited":
            lines[0]["sha256"] = "0" * 64
        else:
            lines[0]["events"][-1] = "f" * 64
        body = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
        world.s3.delete_object(Bucket=world.bucket, Key=key)  # a plain bucket: it can go
        logged.put(key, body.encode())
    elif case == "object with no log entry":
        logged.put(store.key_for(str(uuid.uuid4()), date(2026, 1, 2), "wav"), b"RIFF")
    else:
        raise AssertionError(case)


TAMPERING = {
    "entry bundle edited": ("tree", False),
    "tile replaced": ("tree", False),
    "checkpoint re-signed with another key": ("signature", False),
    "history rewritten": ("consistency", False),
    "object bytes changed": ("object", True),
    "object deleted": ("object", False),
    "object with no log entry": ("unaccounted", False),
    "manifest edited": ("manifest", False),
    "manifest names an event not in the log": ("manifest", False),
}


def test_verify_bucket_passes_on_an_untouched_archive(logged: Logged, cli: Cli) -> None:
    shallow = cli("audit", "verify-bucket", "--key", logged.key)
    assert shallow.exit_code == 0, shallow.output
    assert "2 checkpoint(s) signed by archive.test" in shallow.stdout
    assert "4 archived object(s) checked" in shallow.stdout and "custody log OK" in shallow.stdout
    # one manifest per archived batch (two batches of two), every line agreeing with the log
    assert "2 custody manifest(s) of 4 line(s) checked" in shallow.stdout
    deep = cli("audit", "verify-bucket", "--key", logged.key, "--deep")
    assert deep.exit_code == 0, deep.output
    assert "bytes re-hashed" in deep.stdout


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_bucket_detects_tampering_without_the_database(
    logged: Logged, cli: Cli, case: str
) -> None:
    check, deep = TAMPERING[case]
    _tamper(logged, case)
    args = ["audit", "verify-bucket", "--key", logged.key, *(["--deep"] if deep else [])]
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert any(line.split("│")[1].strip() == check for line in rows), result.stdout
    if deep:  # the metadata still agrees: only re-hashing the bytes finds it
        assert cli("audit", "verify-bucket", "--key", logged.key).exit_code == 0


def test_verify_bucket_usage_errors(logged: Logged, cli: Cli, tmp_path: Path) -> None:
    bad = cli("audit", "verify-bucket", "--key", "not-a-key")
    assert bad.exit_code == 2 and "--key" in bad.stderr
    public = tmp_path / "archive.pub"  # --key FILE: the .pub file `audit keygen` writes
    public.write_text(logged.key + "\n")
    assert cli("audit", "verify-bucket", "--key", str(public)).exit_code == 0
    (tmp_path / "empty.pub").write_text("")
    empty = cli("audit", "verify-bucket", "--key", str(tmp_path / "empty.pub"))
    assert empty.exit_code == 2 and "holds no verifier key" in empty.stderr
    other = cli("audit", "verify-bucket", "--key", str(signing.generate("x").verifier))
    assert other.exit_code == 1 and "signature" in other.stdout


# -- verify-bucket: every object version is accounted for --------------------------------------


def _finding_rows(result: CliResult) -> list[tuple[str, str, str]]:
    """The findings table's rows as (check, object, finding)."""
    rows = []
    for line in result.stdout.splitlines():
        cells = line.split("│")
        if len(cells) == 5:
            check, subject, detail = (cell.strip() for cell in cells[1:4])
            rows.append((check, subject, detail))
    return rows


def test_verify_bucket_accounts_for_every_version_of_an_untouched_archive(
    versioned: Logged, cli: Cli
) -> None:
    world = versioned.world
    latest = versioned.log_key("checkpoint")
    assert len(versions_of(world.s3, world.bucket, latest)) == 3  # one per run: no finding
    for deep in ([], ["--deep"]):
        result = cli("audit", "verify-bucket", "--key", versioned.key, *deep)
        assert result.exit_code == 0, result.output
        assert "3 checkpoint(s) signed" in result.stdout and "custody log OK" in result.stdout
        assert "6 archived object(s) checked" in result.stdout
        listed = re.search(
            r"([\d,]+) object\(s\) listed \(([\d,]+) version\(s\) and delete", result.words
        )
        assert listed, result.stdout
        objects, versions = (int(n.replace(",", "")) for n in listed.groups())
        # 6 recordings, 3 manifests, 3 JSON checkpoints, the probe, the ledger id and the
        # log's tiles, bundles and checkpoints: the latest checkpoint's 2 older versions
        assert objects > 6 + 3 + 3 + 2 and versions == objects + 2


@pytest.mark.parametrize("forgery", FORGERIES)
def test_verify_bucket_names_a_forged_version_and_a_delete_marker(
    versioned: Logged, cli: Cli, forgery: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = versioned.world
    forged_key, hidden_key = (versioned.object_key(versioned.ids[n]) for n in (1, 4))
    (archived,) = versions_of(world.s3, world.bucket, forged_key)
    forged, body = forge_version(world.s3, world.bucket, forged_key, forgery)
    marker = hide_under_delete_marker(world.s3, world.bucket, hidden_key)
    # Rich keeps a set width in _width; undoing this gives it back None (the terminal's
    # width), where undoing a set of the `width` property would pin 80 columns for the
    # tests after this one.
    monkeypatch.setattr(console, "_width", 1000)  # one line per table row

    for deep in ([], ["--deep"]):
        result = cli("audit", "verify-bucket", "--key", versioned.key, *deep)
        assert result.exit_code == 1, result.output
        assert "FAILED" in result.stderr
        rows = _finding_rows(result)
        assert {(check, subject) for check, subject, _ in rows} == {
            ("unlogged_version", forged_key),
            ("current_version_not_archived", forged_key),
            ("delete_marker", hidden_key),
        }, result.stdout
        details = {check: detail for check, _, detail in rows}
        assert forged in details["unlogged_version"] and archived in details["unlogged_version"]
        assert "delete-object" in details["unlogged_version"]  # what to do
        current = details["current_version_not_archived"]
        assert forged in current and archived in current and versioned.ids[1] in current
        assert (hashlib.sha256(body).hexdigest() in current) == bool(deep)
        assert marker in details["delete_marker"] and "404" in details["delete_marker"]


def test_verify_bucket_names_a_second_version_of_custody_objects(
    versioned: Logged, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = versioned.world
    manifest = next(
        o["Key"]
        for o in world.s3.list_objects_v2(
            Bucket=world.bucket, Prefix=manifest_prefix("recordings")
        )["Contents"]
    )
    numbered = versioned.log_key(f"checkpoints/{versioned.sizes()[0]:020d}")
    latest = versioned.log_key("checkpoint")
    probe = f"recordings/{PROBE_NAME}"
    for key in (manifest, numbered):  # the very same bytes again: still a second version
        versioned.put(key, versioned.get(key))
    versioned.put(latest, versioned.get(numbered))  # an older checkpoint made the latest
    versioned.put(latest, versioned.get(numbered).replace(b"\n", b"\n\n", 1))
    versioned.put(probe, versioned.get(probe))  # as the bucket check writes it again: fine
    monkeypatch.setattr(console, "_width", 1000)

    result = cli("audit", "verify-bucket", "--key", versioned.key)
    assert result.exit_code == 1, result.output
    found = [(check, subject) for check, subject, _ in _finding_rows(result)]
    assert sorted(found) == sorted(
        [
            ("unlogged_version", manifest),
            ("unlogged_version", numbered),
            ("unlogged_version", latest),  # no numbered checkpoint holds those bytes
            ("signature", latest),  # and they are no signed note
        ]
    ), result.stdout


# -- prove / check-proof -----------------------------------------------------------------------


@dataclass
class Proving:
    world: AuditWorld
    signer: signing.Signer
    ids: list[str]
    key_file: Path


@pytest.fixture
def proving(
    sqlite_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Proving]:
    upgrade(sqlite_url)
    world = make_world(sqlite_url, s3_client, locked_bucket)
    key_file = tmp_path / "custody.key"
    signer = signing.generate("archive.test")
    signing.write_signer(key_file, signer)
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": sqlite_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_DAYS": "365",
        "TENIOS_CUSTODY_KEY_FILE": str(key_file),
    }.items():
        monkeypatch.setenv(name, value)
    ids = world.archive(3)
    yield Proving(world, signer, ids, key_file)
    world.ledger.engine.dispose()


def _cosign_latest(proving: Proving, witnesses: list[WitnessSigner]) -> None:
    """Add the witnesses' cosignatures to the bucket's latest checkpoint, as a run
    with TENIOS_CUSTODY_WITNESSES stores it."""
    world = proving.world
    key = log_prefix(world.store.prefix) + "checkpoint"
    note = world.s3.get_object(Bucket=world.bucket, Key=key)["Body"].read()
    body = note[: note.index(b"\n\n") + 1].decode()
    lines = [cosign(body, w, 1_765_000_000 + n) for n, w in enumerate(witnesses)]
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=add_signatures(note, lines))


def test_prove_and_check_proof_round_trip(proving: Proving, cli: Cli, tmp_path: Path) -> None:
    assert cli("audit", "checkpoint").exit_code == 0  # signs with TENIOS_CUSTODY_KEY_FILE
    witnesses = [WitnessSigner.generate(f"w{n}.audit.example") for n in (1, 2)]
    _cosign_latest(proving, witnesses)
    rec = proving.world.get(proving.ids[1])
    folder = tmp_path / "proofs"
    made = cli("audit", "prove", rec.recording_uuid, "--output", str(folder))
    assert made.exit_code == 0, made.output
    files = sorted(folder.iterdir())
    events = proving.world.ledger.events(rec.recording_uuid)
    leaves = [int(e["seq"]) - 1 for e in events]
    assert [f.name for f in files] == [
        f"leaf-{int(e['seq']) - 1:020d}-{e['event']}.tlog-proof" for e in events
    ]
    assert len(files) >= 3 and f"(leaves {', '.join(map(str, leaves))})" in made.stdout
    for file, event in zip(files, events, strict=True):
        text = file.read_bytes()
        assert text.startswith(b"c2sp.org/tlog-proof@v1\nextra ")
        assert f"\nindex {int(event['seq']) - 1}\n".encode() in text
        assert b"\xe2\x80\x94 w2.audit.example " in text  # the cosigned checkpoint, verbatim
    secret = proving.key_file.read_text().strip().split("+", 4)[4]
    assert secret not in made.output
    assert all(secret not in f.read_text() for f in files)

    key = str(proving.signer.verifier)
    wkeys = [arg for w in witnesses for arg in ("--witness", str(w.verifier))]
    ok = cli("audit", "check-proof", str(folder), "--key", key, *wkeys)
    assert ok.exit_code == 0, ok.output
    words = ok.words
    assert f"proof OK: {len(files)} event(s) of {rec.recording_uuid}" in words
    assert f"signed by {proving.signer.name}" in words
    assert "witnessed: 2 of 2 needed witness cosignatures" in words
    assert "w1.audit.example at 2025-12-06 05:46:40 UTC" in words
    # issue 27 item 8: when it was archived and its retention, from the verified entry
    archived = next(e for e in events if e["event"] == "archived")
    assert f"archived at {archived['occurred_at']}" in words
    assert rec.retain_until is not None and rec.retention_mode
    assert f"retention {rec.retention_mode} until {rec.retain_until:%Y-%m-%d}" in words
    assert f"{rec.s3_key} (version {rec.s3_version_id}), SHA-256 {rec.sha256}" in words

    copy = tmp_path / "recording.wav"
    copy.write_bytes(proving.world.source.payloads[rec.recording_uuid])
    with_object = cli("audit", "check-proof", str(folder), "--key", key, "--object", str(copy))
    assert with_object.exit_code == 0 and "bytes match" in with_object.stdout
    one = cli("audit", "check-proof", str(files[-1]), "--key", key)  # a single proof file
    assert one.exit_code == 0 and "proof OK: 1 event(s)" in one.words

    changed = bytearray(copy.read_bytes())
    changed[100] ^= 1
    copy.write_bytes(bytes(changed))
    wrong_bytes = cli("audit", "check-proof", str(folder), "--key", key, "--object", str(copy))
    assert wrong_bytes.exit_code == 1 and "hashes to" in wrong_bytes.stderr
    assert cli("audit", "check-proof", str(tmp_path / "nope"), "--key", key).exit_code == 2
    again = cli("audit", "prove", rec.recording_uuid, "--output", str(folder))
    assert again.exit_code == 2 and "--output" in again.stderr  # never overwritten


TAMPERED_PROOFS = {
    # what is done to the second proof file → the step named
    "flipped hash": "inclusion",
    "wrong index": "inclusion",
    "other log key": "signature",
    "missing quorum": "witnesses",
}


@pytest.mark.parametrize("case", sorted(TAMPERED_PROOFS))
def test_check_proof_names_the_failed_step(
    proving: Proving, cli: Cli, tmp_path: Path, case: str
) -> None:
    assert cli("audit", "checkpoint").exit_code == 0
    witnesses = [WitnessSigner.generate(f"w{n}.audit.example") for n in (1, 2, 3)]
    _cosign_latest(proving, witnesses[:2])
    folder = tmp_path / "proofs"
    assert cli("audit", "prove", proving.ids[0], "--output", str(folder)).exit_code == 0
    target = sorted(folder.iterdir())[1]
    lines = target.read_bytes().split(b"\n")
    key = str(proving.signer.verifier)
    quorum = ["--quorum", "2"]
    if case == "flipped hash":
        raw = bytearray(base64.b64decode(lines[3]))
        raw[7] ^= 0x10
        lines[3] = base64.b64encode(bytes(raw))
    elif case == "wrong index":
        lines[2] = f"index {int(lines[2].split()[1]) + 2}".encode()
    elif case == "other log key":
        key = str(signing.generate(proving.signer.name).verifier)
    else:
        quorum = ["--quorum", "3"]
    target.write_bytes(b"\n".join(lines))
    wkeys = [arg for w in witnesses for arg in ("--witness", str(w.verifier))]
    result = cli("audit", "check-proof", str(folder), "--key", key, *wkeys, *quorum)
    assert result.exit_code == 1, result.output
    step = TAMPERED_PROOFS[case]
    assert f"proof FAILED {target.name} at step {step}:" in result.words, result.stderr
    assert "proof does NOT verify" in result.stderr
    if case != "other log key" and case != "missing quorum":  # the other proofs still verify
        assert "verified: " in result.words and "proof OK" not in result.words


def test_no_byte_of_a_tlog_proof_can_change(proving: Proving, tmp_path: Path) -> None:
    from tenios_io.audit.prove import build_proofs
    from tenios_io.custody.tlogproof import (
        ProofFailed,
        ProofKeys,
        format_proof,
        parse_proof,
        verify_proof,
    )

    write_checkpoint(proving.world.ledger, proving.world.store, signer=proving.signer)
    witness = WitnessSigner.generate("w.audit.example")
    _cosign_latest(proving, [witness])
    proofs = build_proofs(proving.world.ledger, proving.world.store, proving.ids[0])
    body = format_proof(proofs.events[-1].proof)
    keys = ProofKeys(
        [proving.signer.verifier],
        default_origin(proving.world.bucket, proving.world.store.prefix),
        WitnessPolicy((witness.verifier,), 1),
    )
    assert verify_proof(parse_proof(body), keys).event["event"] == "archived"
    accepted = []
    for position in range(len(body)):
        tampered = bytearray(body)
        tampered[position] ^= 1
        try:
            verify_proof(parse_proof(bytes(tampered)), keys)
        except ProofFailed:
            continue
        accepted.append((position, body[max(0, position - 20) : position + 20]))
    assert accepted == []


def test_check_proof_still_reads_an_evidence_bundle_of_earlier_versions(
    cli: Cli, tmp_path: Path
) -> None:
    from tenios_io.custody.proof import FORMAT

    signer = signing.generate("archive.test")
    entry = canonical_json(
        {
            "seq": 1,
            "recording_uuid": "00000000-0000-4000-8000-000000000001",
            "event": "archived",
            "actor": "test",
            "occurred_at": "2026-03-01T02:00:00.000000Z",
            "details": {
                "s3_bucket": "b",
                "s3_key": "recordings/2026/03/01/x.wav",
                "s3_version_id": "v1",
                "sha256": "ab" * 32,
                "size_bytes": 4,
                "retention_mode": "COMPLIANCE",
                "retain_until": "2036-03-01T00:00:00.000000Z",
            },
        }
    )
    root = merkle.leaf_hash(entry.encode())
    note = make_checkpoint("tenios-archive/b/recordings", 1, root, signer).note.decode()
    bundle = {
        "format": FORMAT,
        "recording_uuid": "00000000-0000-4000-8000-000000000001",
        "checkpoint": note,
        "events": [{"leaf_index": 0, "entry": entry, "inclusion_proof": []}],
        "object": {
            "bucket": "b",
            "key": "recordings/2026/03/01/x.wav",
            "version_id": "v1",
            "sha256": "ab" * 32,
            "size": 4,
            "retention_mode": "COMPLIANCE",
            "retain_until": "2036-03-01T00:00:00.000000Z",
        },
    }
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bundle))
    ok = cli("audit", "check-proof", str(path), "--key", str(signer.verifier))
    assert ok.exit_code == 0, ok.output
    assert "proof OK: 1 event(s)" in ok.words and "COMPLIANCE until 2036-03-01" in ok.words
    witness = str(WitnessSigner.generate("w").verifier)
    refused = cli(
        "audit", "check-proof", str(path), "--key", str(signer.verifier), "--witness", witness
    )
    assert refused.exit_code == 2 and "audit prove" in refused.stderr


def test_prove_before_any_log_and_for_an_unknown_recording(proving: Proving, cli: Cli) -> None:
    out = str(proving.key_file.parent / "proofs")
    none_yet = cli("audit", "prove", proving.ids[0], "--output", out)
    assert none_yet.exit_code == 1 and "no custody log yet" in none_yet.stderr
    assert cli("audit", "checkpoint").exit_code == 0
    unknown = cli("audit", "prove", str(uuid.uuid4()), "--output", out)
    assert unknown.exit_code != 0 and not Path(out).exists()


def test_ledger_show_names_the_checkpoint_and_leaves(proving: Proving, cli: Cli) -> None:
    rec = proving.ids[0]
    before = cli("ledger", "show", rec)
    assert before.exit_code == 0, before.output
    events = len(proving.world.ledger.events(rec))
    assert f"no checkpoint written yet; this recording's leaves: none; {events} event" in (
        before.stdout
    )
    assert cli("audit", "checkpoint").exit_code == 0
    after = cli("ledger", "show", rec)
    size = open_checkpoint_size(proving)
    assert f"latest signed checkpoint recordings/_custody/log/checkpoints/{size:020d}" in (
        after.stdout.replace("\n", "")
    )
    leaves = ", ".join(str(e["seq"] - 1) for e in proving.world.ledger.events(rec)[:events])
    assert f"({size:,} events); this recording's leaves: {leaves}; 0 event(s)" in after.stdout


def open_checkpoint_size(proving: Proving) -> int:
    from tenios_io.custody.checkpoints import open_checkpoint

    key = log_prefix(proving.world.store.prefix) + "checkpoint"
    note = proving.world.s3.get_object(Bucket=proving.world.bucket, Key=key)["Body"].read()
    return open_checkpoint(note, proving.signer.verifier).size


def test_checkpoint_without_a_key_stops_unless_opted_out_and_a_bad_key_file_is_a_usage_error(
    proving: Proving, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TENIOS_CUSTODY_KEY_FILE")
    before = proving.world.s3.list_object_versions(Bucket=proving.world.bucket)
    refused = cli("audit", "checkpoint")
    assert refused.exit_code == 2, refused.output
    assert len(refused.stderr.strip().splitlines()) == 1  # one line, the command in it
    assert "TENIOS_CUSTODY_KEY_FILE" in refused.stderr
    assert "TENIOS_CUSTODY_UNSIGNED" in refused.stderr
    assert "tenios-archive audit keygen --output " in refused.stderr
    after = proving.world.s3.list_object_versions(Bucket=proving.world.bucket)
    assert after.get("Versions") == before.get("Versions")  # nothing written
    monkeypatch.setenv("TENIOS_CUSTODY_UNSIGNED", "true")  # the explicit opt-out
    unsigned = cli("audit", "checkpoint")
    assert unsigned.exit_code == 0 and "UNSIGNED" in unsigned.stderr
    assert "TENIOS_CUSTODY_KEY_FILE" in unsigned.stderr
    assert "tenios-archive audit keygen --output " in unsigned.stderr.splitlines()[-1]
    monkeypatch.delenv("TENIOS_CUSTODY_UNSIGNED")
    monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(tmp_path / "missing.key"))
    missing = cli("audit", "checkpoint")
    assert missing.exit_code == 2 and "TENIOS_CUSTODY_KEY_FILE" in missing.stderr
    (tmp_path / "bad.key").write_text("PRIVATE+KEY+x+00000000+c2VjcmV0c2VjcmV0\n")
    monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(tmp_path / "bad.key"))
    bad = cli("audit", "checkpoint")
    assert bad.exit_code == 2 and "TENIOS_CUSTODY_KEY_FILE" in bad.stderr
    assert "c2VjcmV0c2VjcmV0" not in bad.output


def test_an_unsigned_era_then_signed_report_verify_chain_and_verify_bucket_agree(
    sqlite_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
    tmp_path: Path,
) -> None:
    """An archive whose first checkpoint was written without a key (issue 27): while the
    latest checkpoint is unsigned all three checks fail and the report's banner is not
    green; once a signed checkpoint follows, all three pass and verify-bucket reports the
    unsigned era once, as history."""
    upgrade(sqlite_url)
    world = make_world(sqlite_url, s3_client, locked_bucket)
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": sqlite_url,
        "TENIOS_S3_BUCKET": locked_bucket,
    }.items():
        monkeypatch.setenv(name, value)
    signer = signing.generate("archive.test")
    key = str(signer.verifier)

    def verdicts(report_dir: str) -> tuple[CliResult, CliResult, CliResult]:
        assert cli("audit", "verify", "--all").exit_code == 0  # coverage complete
        chain = cli("audit", "verify-chain")
        bucket = cli("audit", "verify-bucket", "--key", key)
        report = cli("audit", "report", "--output", str(tmp_path / report_dir))
        return chain, bucket, report

    world.archive(2)
    write_checkpoint(world.ledger, world.store)  # the first nightly, before the key
    chain, bucket, report = verdicts("before")
    assert (chain.exit_code, bucket.exit_code, report.exit_code) == (1, 1, 1), [
        chain.output,
        bucket.output,
        report.output,
    ]
    assert "custody log UNSIGNED" in chain.stderr and "audit checkpoint" in chain.stderr
    assert "no checkpoint signed by this key" in bucket.words
    html = (tmp_path / "before" / "report.html").read_text()
    assert "custody log UNSIGNED" in html and "all checks passed" not in html.lower()

    world.archive(2)
    write_checkpoint(world.ledger, world.store, signer=signer)  # the key is set from now on
    chain, bucket, report = verdicts("after")
    assert (chain.exit_code, bucket.exit_code, report.exit_code) == (0, 0, 0), [
        chain.output,
        bucket.output,
        report.output,
    ]
    assert bucket.words.count("history: 1 UNSIGNED checkpoint(s)") == 1
    assert "custody log OK" in bucket.stdout
    assert "UNSIGNED" not in chain.output
    world.ledger.engine.dispose()
