"""Hostile input at archive time (issue 25): retention is never silently absent.

The real archiver (claim → fetch → spool + SHA-256 → verified upload → ledger) against a
moto bucket with Object Lock and a real ledger (SQLite file and PostgreSQL).  On main, a
recording dated 1995 under ``compliance`` was archived with no Object Lock (one INFO line
said so) and the ledger called it ``archived``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tenios_io.ledger import NewRecording, State
from tenios_io.run.archiver import Outcome
from tests.integration.test_audit_support import AuditWorld, keys_of, make_world, sample_wav

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def world(database_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(
        database_url, s3_client, locked_bucket, retention_mode="compliance", retention_days=2557
    )
    yield w
    w.ledger.engine.dispose()


def test_a_retention_already_over_fails_loudly_instead_of_archiving_unlocked(
    world: AuditWorld,
) -> None:
    old, fresh = "0c5a3a8e-1111-4c1e-9f3a-000000000001", "0c5a3a8e-1111-4c1e-9f3a-000000000002"
    world.source.payloads[old] = sample_wav(2000, seed=1)
    world.source.payloads[fresh] = sample_wav(2000, seed=2)
    world.ledger.register(
        [
            NewRecording(old, recorded_at=datetime(1995, 6, 1, tzinfo=UTC)),
            NewRecording(fresh, recorded_at=datetime.now(UTC)),
        ]
    )

    results = world.archiver().archive_batch(world.ledger.claim_batch(2, lease_seconds=60))

    by_id = {r.recording_uuid: r for r in results}
    assert by_id[fresh].outcome is Outcome.ARCHIVED
    assert by_id[old].outcome is Outcome.FAILED  # counted in the summary, exit 1
    reason = by_id[old].reason or ""
    assert "ended 2002-06-01" in reason and "Object Lock cannot be set to a past date" in reason
    row = world.get(old)
    assert row.state is State.FAILED and row.retain_until is None and row.s3_key is None
    assert world.events(old)[-1] == "failed"
    [failed] = world.event_details(old, "failed")
    assert failed["error_type"] == "RetentionNotApplicable"
    # Nothing uploaded for it: the bucket holds only the fresh recording, locked.
    assert [k for k in keys_of(world.s3, world.bucket) if "/_custody/" not in k] == [
        key for key in keys_of(world.s3, world.bucket) if fresh in key
    ]
    head = world.s3.head_object(Bucket=world.bucket, Key=world.get(fresh).s3_key or "")
    assert head["ObjectLockMode"] == "COMPLIANCE"
