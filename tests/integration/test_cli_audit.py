"""The audit, purge and legal-hold commands through the real entry point (moto server, both
ledger backends): what they print and the exit codes (0 ok, 1 problems found, 2 usage)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tenios_io.custody.chain import event_hash
from tenios_io.ledger import State
from tenios_io.store import sidecar_key
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.fixtures.sshd import SftpServer
from tests.integration.test_audit_support import (
    FORGERIES,
    AuditWorld,
    forge_version,
    hide_under_delete_marker,
    make_world,
    recent,
    versions_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]


@pytest.fixture
def world(
    database_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AuditWorld]:
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_MODE": "governance",
        "TENIOS_RETENTION_DAYS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TENIOS_SFTP_URL", raising=False)
    w = make_world(database_url, s3_client, locked_bucket, retention_days=30)
    yield w
    w.ledger.engine.dispose()


def test_verify_passes_then_names_the_discrepancy(world: AuditWorld, cli: Cli) -> None:
    ids = world.archive(3)
    ok = cli("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "checked 3 of 3" in ok.stdout and "3 verified" in ok.stdout
    broken = ids[1]
    key = world.get(broken).s3_key
    assert key
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=b"a newer version on top")
    bad = cli("audit", "verify", "--all", "--deep")
    assert bad.exit_code == 1
    assert "1 discrepancies" in bad.stdout and "current_version" in bad.stdout
    assert broken in bad.stderr and ids[0] not in bad.stderr
    assert world.events(broken)[-1] == "discrepancy"


def test_verify_rolling_and_sample_sizes(world: AuditWorld, cli: Cli) -> None:
    world.archive(5)
    rolling = cli("audit", "verify", "--rolling", "--cycle-days", "2")
    assert rolling.exit_code == 0 and "checked 3 of 5" in rolling.stdout, rolling.output
    sample = cli("audit", "verify", "--sample", "40")
    assert sample.exit_code == 0 and "checked 2 of 5" in sample.stdout
    since = cli("audit", "verify", "--since", "2999-01-01")
    assert since.exit_code == 0 and "checked 0 of 0" in since.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--all", "--rolling"),
        ("--sample", "10", "--all"),
        ("--cycle-days", "3"),
        ("--since", "yesterday"),
        ("--sample", "0"),
    ],
)
def test_verify_usage_errors(world: AuditWorld, cli: Cli, args: tuple[str, ...]) -> None:
    assert cli("audit", "verify", *args).exit_code == 2


def test_commands_needing_s3_say_which_setting_is_missing(
    world: AuditWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENIOS_S3_BUCKET")
    for command in (("audit", "verify"), ("audit", "checkpoint"), ("purge", "--expired")):
        result = cli(*command)
        assert result.exit_code == 2 and "TENIOS_S3_BUCKET" in result.stderr, command
    # The chain is checked and said so, but without the bucket the command cannot say
    # "all good": exit 2 naming the setting (issue 12 items 3 and 5; was exit 0).
    chain = cli("audit", "verify-chain")
    assert chain.exit_code == 2 and "checkpoints not checked" in chain.stderr
    assert "custody chain OK" in chain.stdout and "TENIOS_S3_BUCKET" in chain.stderr


def test_checkpoint_and_verify_chain(world: AuditWorld, cli: Cli) -> None:
    world.archive(2)
    none_yet = cli("audit", "verify-chain")
    assert none_yet.exit_code == 0 and "none written yet" in none_yet.stdout
    written = cli("audit", "checkpoint")
    assert written.exit_code == 0, written.output
    assert "recordings/_custody/checkpoints/" in written.stdout
    assert "Object Lock governance until" in written.stdout
    head = world.ledger.chain_head()
    assert world.events  # the checkpoint event is the new head
    assert json.loads(world.event_rows()[-1]["details"])["last_seq"] == head.seq - 1
    ok = cli("audit", "verify-chain")
    assert ok.exit_code == 0 and "checkpoints OK: 1" in ok.stdout, ok.output
    if world.ledger.engine.dialect.name != "sqlite":
        return  # PostgreSQL's trigger refuses the tampering below
    world.sql("DELETE FROM custody_events WHERE seq >= :s", s=head.seq - 2)
    cut = cli("audit", "verify-chain")
    assert cut.exit_code == 1
    assert "custody chain OK" in cut.stdout  # the chain alone cannot tell ...
    assert "checkpoint problem" in cut.stderr and "truncated" in cut.stderr  # ... the bucket can
    refused = cli("audit", "checkpoint")
    assert refused.exit_code == 1 and "no event" in refused.stderr


def test_reconcile_lists_and_exits_1(world: AuditWorld, cli: Cli) -> None:
    world.archive(2)
    clean = cli("audit", "reconcile")
    assert clean.exit_code == 0, clean.output
    assert "no SFTP drop configured" in clean.stdout
    stray = f"recordings/2026/01/01/{uuid.uuid4()}.wav"
    world.s3.put_object(Bucket=world.bucket, Key=stray, Body=b"RIFF")
    found = cli("audit", "reconcile")
    assert found.exit_code == 1
    assert "objects_not_in_ledger" in found.stdout and stray in found.stdout


def test_reconcile_names_a_forged_version_and_a_delete_marker(world: AuditWorld, cli: Cli) -> None:
    forged_rec, hidden_rec = (world.get(key) for key in world.archive(2))
    assert forged_rec.s3_key and hidden_rec.s3_key and forged_rec.s3_version_id
    forged, _ = forge_version(world.s3, world.bucket, forged_rec.s3_key, FORGERIES[1])
    marker = hide_under_delete_marker(world.s3, world.bucket, hidden_rec.s3_key)
    found = cli("audit", "reconcile")
    assert found.exit_code == 1, found.output
    lines = found.stdout.splitlines()
    archived = forged_rec.s3_version_id
    for category, key, versions in (
        ("unlogged_version", forged_rec.s3_key, (forged, archived)),
        ("current_version_not_archived", forged_rec.s3_key, (forged, archived)),
        ("delete_marker", hidden_rec.s3_key, (marker,)),
    ):
        (line,) = [x for x in lines if x.startswith(f"  {category}: {key} ")]
        assert all(v in line for v in versions) and "delete-object" in line, line


def test_retention_and_report(world: AuditWorld, cli: Cli, tmp_path: Path) -> None:
    expired = world.archive(1, recorded_at=recent(40))[0]
    due = world.archive(1, recorded_at=recent(25))[0]
    listing = cli("audit", "retention", "--due-within", "10")
    assert listing.exit_code == 0
    assert expired in listing.stdout and due in listing.stdout
    assert "1 past retention (0 on legal hold), 1 ending within 10 days" in listing.stdout
    out = tmp_path / "report"
    report = cli("audit", "report", "--output", str(out), "--from", "2020-01-01")
    assert report.exit_code == 0, report.output
    assert (out / "report.html").exists() and (out / "recordings.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["retention_expired"] == 1 and summary["checkpoints"]["checked"] == 0
    backwards = cli(
        "audit", "report", "--output", str(out), "--from", "2026-02-01", "--to", "2026-01-01"
    )
    assert backwards.exit_code == 2


def test_purge_deletes_nothing_without_yes(world: AuditWorld, cli: Cli) -> None:
    # Archived by an earlier version: purge deletes the sidecar beside the object too.
    old, held = world.archive(2, recorded_at=recent(100), earlier_version=True)
    rec = world.get(old)
    assert rec.s3_key
    assert versions_of(world.s3, world.bucket, sidecar_key(rec.s3_key)) != []
    hold = cli("ledger", "hold", held, "--reason", "case 12")
    assert hold.exit_code == 0 and "legal hold placed in S3 and the ledger" in hold.stdout
    holds = len(world.event_details(held, "legal_hold"))
    again = cli("ledger", "hold", held, "--reason", "case 12")  # issue 27: not "placed" again
    assert again.exit_code == 0 and "already on legal hold: nothing changed" in again.stdout
    assert "placed" not in again.stdout
    assert len(world.event_details(held, "legal_hold")) == holds  # no second event

    for args in (("--expired",), ("--expired", "--dry-run")):
        dry = cli("purge", *args)
        assert dry.exit_code == 0, dry.output
        assert "dry run — nothing was deleted" in dry.stdout and "--yes" in dry.stdout
        assert "would purge" in dry.stdout
    assert versions_of(world.s3, world.bucket, rec.s3_key) == [rec.s3_version_id]
    assert world.get(old).state is State.ARCHIVED
    assert cli("purge", "--expired", "--dry-run", "--yes").exit_code == 2
    assert cli("purge").exit_code == 2
    assert cli("purge", "--yes").exit_code == 2

    done = cli("purge", "--expired", "--yes", "--reason", "retention policy R-7")
    assert done.exit_code == 0, done.output
    assert "purged 1 recording(s)" in done.stdout and "1 refused" in done.stdout
    assert versions_of(world.s3, world.bucket, rec.s3_key) == []
    assert versions_of(world.s3, world.bucket, sidecar_key(rec.s3_key)) == []
    (evidence,) = world.event_details(old, "purged")
    assert evidence["reason"] == "retention policy R-7"
    assert evidence["by"].startswith("cli:purge:")
    assert world.get(held).state is State.ARCHIVED

    release = cli("ledger", "release-hold", held, "--reason", "case 12 closed")
    assert release.exit_code == 0 and world.get(held).legal_hold is False
    assert cli("purge", "--expired", "--yes").exit_code == 0
    assert world.get(held).state is State.PURGED
    nothing = cli("purge", "--expired", "--yes")
    assert nothing.exit_code == 0 and "nothing to purge" in nothing.stdout


def test_hold_errors(world: AuditWorld, cli: Cli) -> None:
    (key,) = world.archive(1)
    unknown = str(uuid.uuid4())
    result = cli("ledger", "hold", key, unknown, "--reason", "r")
    assert result.exit_code == 1 and f"ok      {key}" in result.stdout and unknown in result.stdout
    assert cli("ledger", "hold", key).exit_code == 2  # --reason is required
    assert cli("ledger", "hold", key, "--reason", "  ").exit_code == 2
    assert cli("ledger", "hold", "not-a-uuid", "--reason", "r").exit_code == 2


def test_reconcile_includes_the_real_sftp_drop(
    world: AuditWorld, cli: Cli, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (known,) = world.archive(1)
    stranger = str(uuid.uuid4())
    for name in (f"{known}.wav", f"{stranger}.wav"):
        (sftp_server.drop_dir / name).write_bytes(b"RIFF0000WAVE")
    for name, value in {
        "TENIOS_SFTP_URL": sftp_server.url(),
        "TENIOS_SFTP_KEY_FILE": str(sftp_server.key_file),
        "TENIOS_SFTP_KNOWN_HOSTS": str(sftp_server.known_hosts),
        "TENIOS_SFTP_SETTLE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    result = cli("audit", "reconcile")
    assert result.exit_code == 1, result.output
    assert "2 drop files" in result.stdout and "drop_files_not_registered" in result.stdout
    assert f"{stranger}.wav" in result.stdout and f"{known}.wav" not in result.stdout
    assert cli("audit", "reconcile", "--no-sftp").exit_code == 0


#: The README's stand-alone chain check (standard library only), run here as written there.
RECOMPUTE_CHAIN = """\
import hashlib, json, sys

FIELDS = ("seq", "recording_uuid", "event", "actor", "occurred_at", "details")
prev, count, hashes = "0" * 64, 0, {}
with open(sys.argv[1], encoding="utf-8") as events:
    for line in events:
        e = json.loads(line)
        count += 1
        body = {k: e[k] for k in FIELDS}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((prev + text).encode("utf-8")).hexdigest()
        if e["seq"] != count or e["prev_hash"] != prev or e["hash"] != digest:
            sys.exit(f"BROKEN at event {e['seq']}")
        prev = hashes[e["seq"]] = digest
print(f"chain OK: {count} events, head {prev}")
if len(sys.argv) > 2:
    with open(sys.argv[2], encoding="utf-8") as f:
        cp = json.load(f)
    if hashes.get(cp["last_seq"]) != cp["last_hash"]:
        sys.exit(f"checkpoint {cp['last_seq']} NOT in the ledger: history was rewritten")
    print(f"checkpoint OK: event {cp['last_seq']} has hash {cp['last_hash']}")
"""


def test_independent_check_from_an_export_and_the_bucket(
    world: AuditWorld, cli: Cli, tmp_path: Path
) -> None:
    """What the README tells an auditor to do, with boto3 standing in for the AWS CLI."""
    (key,) = world.archive(1)
    assert cli("audit", "checkpoint").exit_code == 0
    events, script, checkpoint = (
        tmp_path / "events.jsonl",
        tmp_path / "recompute_chain.py",
        tmp_path / "checkpoint.json",
    )
    script.write_text(RECOMPUTE_CHAIN)
    listed = world.s3.list_objects_v2(
        Bucket=world.bucket, Prefix="recordings/_custody/checkpoints/"
    )
    (newest,) = [o["Key"] for o in listed["Contents"]]
    checkpoint.write_bytes(world.s3.get_object(Bucket=world.bucket, Key=newest)["Body"].read())

    def recompute() -> subprocess.CompletedProcess[str]:
        assert cli("audit", "export-events", "--output", str(events)).exit_code == 0
        return subprocess.run(
            [sys.executable, "-I", str(script), str(events), str(checkpoint)],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = recompute()
    assert ok.returncode == 0 and "chain OK" in ok.stdout and "checkpoint OK" in ok.stdout
    # The recording itself: bytes → sha256sum, S3's checksum, the ledger — all one value.
    rec = world.get(key)
    assert rec.s3_key
    got = world.s3.get_object(
        Bucket=world.bucket, Key=rec.s3_key, VersionId=rec.s3_version_id, ChecksumMode="ENABLED"
    )
    assert hashlib.sha256(got["Body"].read()).hexdigest() == rec.sha256
    assert base64.b64decode(got["ChecksumSHA256"]).hex() == rec.sha256
    exported = [json.loads(line) for line in events.read_text().splitlines()]
    archived = [e for e in exported if e["recording_uuid"] == key and e["event"] == "archived"]
    assert archived[0]["details"]["sha256"] == rec.sha256
    if world.ledger.engine.dialect.name == "sqlite":  # rewrite history: re-hash from event 1
        rows = world.event_rows()
        prev = "0" * 64
        for row in rows:
            if row["seq"] == 1:
                row["actor"] = "mallory"
            new = event_hash(prev, row)
            world.sql(
                "UPDATE custody_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s",
                a=row["actor"],
                p=prev,
                h=new,
                s=row["seq"],
            )
            prev = new
        rewritten = recompute()
        assert rewritten.returncode == 1 and "NOT in the ledger" in rewritten.stderr
