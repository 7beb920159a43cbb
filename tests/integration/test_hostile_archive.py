"""Hostile input at archive time (issue 25): retention is never silently absent, and
content already archived under another id is flagged the moment it happens.

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
from tenios_io.run.loop import RunSummary
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


def test_content_already_archived_under_another_id_is_flagged_at_archive_time(
    world: AuditWorld,
) -> None:
    # A 200 answer carrying another recording's valid WAV: on main archived as verified,
    # and only a later `audit reconcile` noticed (content_under_several_ids).
    (first,) = world.archive(1)
    other = "0c5a3a8e-2222-4c1e-9f3a-000000000003"
    world.source.payloads[other] = world.source.payloads[first]
    world.ledger.register([NewRecording(other, recorded_at=datetime.now(UTC))])

    archiver = world.archiver()
    [result] = archiver.archive_batch(world.ledger.claim_batch(1, lease_seconds=60))

    assert result.outcome is Outcome.ARCHIVED  # archived, and flagged
    assert result.same_content_as == (first,)
    assert world.get(other).state is State.ARCHIVED
    events = world.events(other)
    assert events[-2:] == ["duplicate_content", "archived"]
    [flag] = world.event_details(other, "duplicate_content")
    assert flag == {"sha256": world.get(first).sha256, "also_archived_as": [first]}
    summary = RunSummary(started_at=datetime.now(UTC))
    summary.add([result])
    assert summary.to_dict()["duplicate_content"] == [
        {"recording_uuid": other, "same_content_as": [first]}
    ]
    assert summary.exit_code == 0
    assert "duplicate_content" not in world.events(first)  # the first is not the copy
