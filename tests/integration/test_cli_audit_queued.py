"""The custody events still queued (written, not yet integrated by the sequencer) are
reported beside what the audit covers: `audit verify-chain`, `audit export-events` and
`audit report` (real entry point, moto server, both ledger backends)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tenios_io.ledger import NewRecording
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import AuditWorld, make_world

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
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TENIOS_SFTP_URL", raising=False)
    w = make_world(database_url, s3_client, locked_bucket, retention_days=30)
    yield w
    w.ledger.engine.dispose()


def _queue_claims(world: AuditWorld, count: int) -> None:
    """What a run leaves before its sequencer turn: claimed events, queued only."""
    keys = [str(uuid.uuid4()) for _ in range(count)]
    world.ledger.register([NewRecording(key) for key in keys])
    claims = world.ledger.claim_batch(count, lease_seconds=60, integrate=False)
    assert len(claims) == count
    assert world.ledger.queued_events() == count


def test_queued_events_are_reported_and_not_covered(
    world: AuditWorld, cli: Cli, tmp_path: Path
) -> None:
    world.archive(2)
    _queue_claims(world, 3)
    integrated = world.ledger.verify_chain(integrate=False).events

    check = cli("audit", "verify-chain", "--no-integrate")
    assert check.exit_code == 0, check.output
    assert f"custody chain OK: {integrated:,} events" in check.stdout
    assert "3 custody event(s) still queued" in check.stdout
    assert "not covered by this check" in check.stdout

    export = cli("audit", "export-events", "--no-integrate")
    assert export.exit_code == 0, export.output
    assert len(export.stdout.splitlines()) == integrated
    assert "3 custody event(s) still queued" in export.stderr
    assert "not in the export" in export.stderr

    report = cli("audit", "report", "--output", str(tmp_path / "r"), "--no-integrate")
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["chain"]["events"] == integrated and summary["chain"]["queued"] == 3
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Events still queued" in html and "3 written but not yet integrated" in html

    assert world.ledger.queued_events() == 3  # --no-integrate wrote nothing

    # By default the queue is integrated first: everything is covered, nothing is queued.
    full = cli("audit", "verify-chain")
    assert full.exit_code == 0, full.output
    assert f"custody chain OK: {integrated + 3:,} events" in full.stdout
    assert "still queued" not in full.output
    assert world.ledger.queued_events() == 0
    export = cli("audit", "export-events")
    assert len(export.stdout.splitlines()) == integrated + 3
    assert "still queued" not in export.stderr
