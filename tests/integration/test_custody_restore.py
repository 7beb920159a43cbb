"""`ledger restore --from-bucket` (moto server, both ledger backends): delete the database,
rebuild it from the custody log, verify it, and archive on with the log extending
consistently."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import open_checkpoint
from tenios_io.custody.layout import log_prefix
from tenios_io.custody.tree import LogFiles, tree_reader
from tenios_io.ledger.schema import downgrade, upgrade
from tenios_io.publish.identity import read_bucket_ledger_id
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]
COMPARED = (
    "recording_uuid",
    "state",
    "attempts",
    "sha256",
    "size_bytes",
    "s3_bucket",
    "s3_key",
    "s3_version_id",
    "retention_mode",
    "retain_until",
    "legal_hold",
    "archived_at",
    "recorded_at",
)


@pytest.fixture
def world(
    database_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[tuple[AuditWorld, signing.Signer]]:
    key_file = tmp_path / "custody.key"
    signer = signing.generate("archive.test")
    signing.write_signer(key_file, signer)
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_DAYS": "365",
        "TENIOS_CUSTODY_KEY_FILE": str(key_file),
    }.items():
        monkeypatch.setenv(name, value)
    w = make_world(database_url, s3_client, locked_bucket)
    yield w, signer
    w.ledger.engine.dispose()


def _rows(world: AuditWorld) -> dict[str, tuple[object, ...]]:
    return {
        r.recording_uuid: tuple(getattr(r, c) for c in COMPARED)
        for r in world.ledger.iter_recordings()
    }


def test_restore_from_the_bucket_then_verify_and_archive_on(
    world: tuple[AuditWorld, signing.Signer], cli: Cli, database_url: str
) -> None:
    w, signer = world
    ids = w.archive(5)
    hold = cli("ledger", "hold", ids[0], "--reason", "litigation")
    assert hold.exit_code == 0, hold.output
    assert cli("audit", "checkpoint").exit_code == 0
    files = LogFiles(w.store, log_prefix(w.store.prefix))
    before = open_checkpoint(files.require("checkpoint"), signer.verifier)
    rows = _rows(w)
    events = [dict(e) for e in w.event_rows()][: before.size]
    ledger_id = w.ledger.ledger_id()
    assert read_bucket_ledger_id(w.store) == ledger_id  # `audit checkpoint` bound the bucket

    w.ledger.engine.dispose()
    downgrade(database_url)  # the database is lost …
    upgrade(database_url)  # … and a new, empty one is created
    assert _rows(w) == {}
    assert w.ledger.ledger_id() != ledger_id  # a new ledger: the bucket would refuse it

    restored = cli("ledger", "restore", "--from-bucket")
    assert restored.exit_code == 0, restored.output
    assert f"restored {before.size:,} custody events and 5 recordings" in restored.stdout
    assert f"ledger id {ledger_id} (the bucket's) adopted" in restored.stdout
    assert w.ledger.ledger_id() == ledger_id
    assert _rows(w) == rows
    assert [dict(e) for e in w.event_rows()] == events  # byte-for-byte the logged chain
    chain = cli("audit", "verify-chain")
    assert chain.exit_code == 0, chain.output
    verified = cli("audit", "verify", "--all")
    assert verified.exit_code == 0, verified.output
    assert "5 verified" in verified.stdout

    again = cli("ledger", "restore", "--from-bucket")
    assert again.exit_code == 1 and "not empty" in again.stderr

    w.archive(3)
    assert cli("audit", "checkpoint").exit_code == 0
    after = open_checkpoint(files.require("checkpoint"), signer.verifier)
    assert after.size > before.size
    reader = tree_reader(files, after.size)
    proof = merkle.consistency_proof(reader, before.size, after.size)
    merkle.verify_consistency(before.size, after.size, before.root, after.root, proof)
    assert cli("audit", "verify-bucket", "--key", str(signer.verifier)).exit_code == 0


def test_restore_refuses_a_log_signed_by_another_key(
    world: tuple[AuditWorld, signing.Signer], cli: Cli, database_url: str
) -> None:
    w, _signer = world
    w.archive(2)
    assert cli("audit", "checkpoint").exit_code == 0
    w.ledger.engine.dispose()
    downgrade(database_url)
    upgrade(database_url)
    other = str(signing.generate("archive.test").verifier)
    refused = cli("ledger", "restore", "--from-bucket", "--key", other)
    assert refused.exit_code == 1 and "not signed by" in refused.stderr
    assert _rows(w) == {}
    usage = cli("ledger", "restore")
    assert usage.exit_code == 2 and "--from-bucket" in usage.stderr
