"""Retention, legal holds and purging with evidence, against moto server and both backends.

Recordings whose retention has already ended are made the way they come about: an
old ``recorded_at``, archived "back then" (AuditWorld.archive: the store judges the
retention at the recording's date), under an Object Lock whose retain-until has since
passed.  Retention that ends while the test runs is a governance lock shortened to a
few seconds.  The ledger's clock is moved to make S3 and the ledger disagree.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tenios_io.audit import (
    PurgeAction,
    purge_expired,
    retention_overview,
    set_legal_hold,
)
from tenios_io.exceptions import UnknownRecording
from tenios_io.ledger import NewRecording, State
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.retry import RetryPolicy
from tenios_io.store import sidecar_key
from tests.integration.test_audit_support import (
    AuditWorld,
    make_world,
    recent,
    sample_wav,
    versions_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RETENTION_DAYS = 30


@pytest.fixture
def world(database_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(
        database_url, s3_client, locked_bucket, retention_mode="governance", retention_days=30
    )
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def compliance_world(
    sqlite_url: str, s3_client: S3Client, locked_bucket: str
) -> Iterator[AuditWorld]:
    from tenios_io.ledger.schema import upgrade

    upgrade(sqlite_url)
    w = make_world(sqlite_url, s3_client, locked_bucket, retention_mode="compliance")
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def plain_world(sqlite_url: str, s3_client: S3Client, plain_bucket: str) -> Iterator[AuditWorld]:
    from tenios_io.ledger.schema import upgrade

    upgrade(sqlite_url)
    w = make_world(sqlite_url, s3_client, plain_bucket, retention_days=30)
    yield w
    w.ledger.engine.dispose()


def test_overview_lists_expired_and_due(world: AuditWorld) -> None:
    expired = world.archive(1, recorded_at=recent(40))  # ended 10 days ago
    soon = world.archive(1, recorded_at=recent(25))  # ends in 5 days
    world.archive(1, recorded_at=recent(1))  # ends in 29 days
    overview = retention_overview(world.ledger, within_days=7)
    assert [r.recording_uuid for r in overview.expired] == expired
    assert [r.recording_uuid for r in overview.due] == soon


@pytest.mark.parametrize("earlier_version", [False, True])
def test_hold_and_release_reach_s3_the_ledger_and_the_chain(
    world: AuditWorld, earlier_version: bool
) -> None:
    (key,) = world.archive(1, earlier_version=earlier_version)
    rec = world.get(key)
    assert rec.s3_key is not None
    result = set_legal_hold(world.ledger, world.store, key, on=True, reason="case 4711")
    assert result.ok and result.applied_in_s3
    held = [rec.s3_key, sidecar_key(rec.s3_key)] if earlier_version else [rec.s3_key]
    for k in held:  # an earlier version's sidecar is held with its object
        assert world.s3.head_object(Bucket=world.bucket, Key=k)["ObjectLockLegalHoldStatus"] == "ON"
    assert world.get(key).legal_hold is True
    (details,) = world.event_details(key, "legal_hold")
    assert details["reason"] == "case 4711" and details["version_id"] == rec.s3_version_id
    assert ("sidecar_version_id" in details) is earlier_version

    released = set_legal_hold(world.ledger, world.store, key, on=False, reason="case closed")
    assert released.ok and world.get(key).legal_hold is False
    assert world.s3.head_object(Bucket=world.bucket, Key=rec.s3_key)[
        "ObjectLockLegalHoldStatus"
    ] == ("OFF")
    assert world.event_details(key, "legal_hold_released")[0]["reason"] == "case closed"
    assert world.ledger.verify_chain().ok


def test_hold_before_archiving_is_applied_at_upload(world: AuditWorld) -> None:
    (key,) = world.archive(1, legal_hold=True)
    rec = world.get(key)
    assert rec.legal_hold and rec.s3_key
    head = world.s3.head_object(Bucket=world.bucket, Key=rec.s3_key)
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    pending = "00000000-0000-4000-8000-00000000abcd"
    world.ledger.register([NewRecording(pending)])
    result = set_legal_hold(world.ledger, world.store, pending, on=True, reason="litigation")
    assert result.ok and not result.applied_in_s3 and world.get(pending).legal_hold
    with pytest.raises(UnknownRecording):
        set_legal_hold(
            world.ledger, world.store, "11111111-1111-4111-8111-111111111111", on=True, reason="x"
        )


def test_hold_placed_while_in_flight_is_on_the_object_before_archived(
    world: AuditWorld,
) -> None:
    key = str(uuid.uuid4())
    world.source.payloads[key] = sample_wav(3000, seed=7)
    world.ledger.register([NewRecording(key)])
    claims = world.ledger.claim_batch(1, lease_seconds=60)
    # The operator's hold lands after the claim (the archiver's snapshot says no hold).
    result = set_legal_hold(world.ledger, world.store, key, on=True, reason="litigation")
    assert result.ok and not result.applied_in_s3
    archiver = Archiver(
        ledger=world.ledger,
        store=world.store,
        sources=[world.source],
        policy=RetryPolicy(max_attempts=1),
        lease_seconds=60,
    )
    (done,) = archiver.archive_batch(claims)
    assert done.outcome is Outcome.ARCHIVED
    rec = world.get(key)
    assert rec.state is State.ARCHIVED and rec.s3_key
    head = world.s3.head_object(Bucket=world.bucket, Key=rec.s3_key)
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert versions_of(world.s3, world.bucket, sidecar_key(rec.s3_key)) == []  # none written
    events = world.events(key)
    assert events.index("legal_hold_applied") < events.index("archived")


def test_plain_bucket_hold_is_a_tag(plain_world: AuditWorld) -> None:
    (key,) = plain_world.archive(1)
    rec = plain_world.get(key)
    assert set_legal_hold(plain_world.ledger, plain_world.store, key, on=True, reason="r").ok
    tags = plain_world.s3.get_object_tagging(Bucket=plain_world.bucket, Key=rec.s3_key or "")
    assert {"Key": "legal-hold", "Value": "on"} in tags["TagSet"]


@pytest.mark.parametrize("earlier_version", [False, True])
def test_purge_deletes_expired_unheld_recordings_with_evidence(
    world: AuditWorld, earlier_version: bool
) -> None:
    old, held = world.archive(2, recorded_at=recent(400), earlier_version=earlier_version)
    young = world.archive(1, recorded_at=recent(2))[0]
    assert set_legal_hold(world.ledger, world.store, held, on=True, reason="audit 2026").ok
    rec = world.get(old)
    assert rec.s3_key and rec.s3_version_id

    dry = purge_expired(world.ledger, world.store, execute=False)
    assert [(r.recording_uuid, r.action) for r in dry.results] == sorted(
        [(old, PurgeAction.WOULD_PURGE), (held, PurgeAction.REFUSED)]
    )
    assert world.events(old)[-1] == "archived" and world.get(old).state is State.ARCHIVED
    assert versions_of(world.s3, world.bucket, rec.s3_key) == [rec.s3_version_id]

    world.ledger.actor = "cli:purge:officer@host"
    report = purge_expired(world.ledger, world.store, execute=True, reason="policy R-7")
    assert report.ok
    outcomes = {r.recording_uuid: r for r in report.results}
    assert outcomes[old].action is PurgeAction.PURGED
    assert outcomes[held].action is PurgeAction.REFUSED and outcomes[held].expected
    assert young not in outcomes
    assert versions_of(world.s3, world.bucket, rec.s3_key) == []
    assert versions_of(world.s3, world.bucket, sidecar_key(rec.s3_key)) == []
    assert world.get(old).state is State.PURGED
    assert world.events(old)[-2:] == ["purge_started", "purged"]
    (evidence,) = world.event_details(old, "purged")
    assert evidence["key"] == rec.s3_key and evidence["version_id"] == rec.s3_version_id
    assert (evidence["sha256"], evidence["size"]) == (rec.sha256, rec.size_bytes)
    assert evidence["reason"] == "policy R-7" and evidence["by"] == "cli:purge:officer@host"
    assert evidence["deleted_at"]
    # An earlier version's sidecar is deleted with its object; there is none otherwise.
    assert evidence.get("sidecar_deleted", False) is earlier_version
    assert "sidecar" not in outcomes[old].reason
    (refusal,) = world.event_details(held, "purge_refused")
    assert "legal hold" in refusal["refused_because"]
    assert world.get(held).state is State.ARCHIVED
    assert world.ledger.verify_chain().ok
    # Nothing more to do; the held one is refused again (and recorded again).
    again = purge_expired(world.ledger, world.store, execute=True)
    assert [r.recording_uuid for r in again.results] == [held]


def test_s3_refuses_while_its_lock_runs_and_the_refusal_is_recorded(
    compliance_world: AuditWorld,
) -> None:
    """The ledger's clock says retention ended; S3's compliance lock still runs."""
    world = compliance_world
    (key,) = world.archive(1, recorded_at=recent(1))
    rec = world.get(key)
    assert rec.retain_until is not None and rec.s3_key
    world.clock.set(rec.retain_until - timedelta(hours=12))
    world.sql(  # the ledger believes an earlier date than S3 holds
        "UPDATE recordings SET retain_until = :u WHERE recording_uuid = :k",
        u=rec.retain_until - timedelta(days=1),
        k=key,
    )
    report = purge_expired(world.ledger, world.store, execute=True)
    (result,) = report.results
    assert result.action is PurgeAction.REFUSED and not result.expected and not report.ok
    assert "S3 retains it" in result.reason
    # S3's own refusal: by the ledger's clock even S3's date has passed; S3 knows better.
    world.clock.set(rec.retain_until + timedelta(days=1))
    world.sql(
        "UPDATE recordings SET retain_until = :u WHERE recording_uuid = :k",
        u=rec.retain_until,
        k=key,
    )
    report = purge_expired(world.ledger, world.store, execute=True)
    (result,) = report.results
    assert result.action is PurgeAction.REFUSED and "S3 refused the deletion" in result.reason
    assert versions_of(world.s3, world.bucket, rec.s3_key) == [rec.s3_version_id]
    assert world.get(key).state is State.ARCHIVED
    assert [d["refused_because"][:12] for d in world.event_details(key, "purge_refused")] == [
        "S3 retains i",
        "S3 refused t",
    ]


def test_governance_lock_that_ran_out_needs_no_bypass(world: AuditWorld) -> None:
    (key,) = world.archive(1, recorded_at=recent(2), earlier_version=True)
    rec = world.get(key)
    assert rec.s3_key and rec.s3_version_id
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    for k, v in ((rec.s3_key, rec.s3_version_id), (sidecar_key(rec.s3_key), None)):
        args = {"VersionId": v} if v else {}
        world.s3.put_object_retention(
            Bucket=world.bucket,
            Key=k,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
            BypassGovernanceRetention=True,
            **args,  # type: ignore[arg-type]
        )
    world.sql("UPDATE recordings SET retain_until = :u WHERE recording_uuid = :k", u=until, k=key)
    world.clock.set(until + timedelta(seconds=1))
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.2)
    report = purge_expired(world.ledger, world.store, execute=True)
    assert [r.action for r in report.results] == [PurgeAction.PURGED], report.results
    assert versions_of(world.s3, world.bucket, rec.s3_key) == []


def test_interrupted_purge_is_finished_by_the_next_run(world: AuditWorld) -> None:
    (key,) = world.archive(1, recorded_at=recent(400), earlier_version=True)
    rec = world.get(key)
    assert rec.s3_key and rec.s3_version_id
    # The crash: purge_started recorded, the version deleted, then the process died.
    world.ledger.annotate(key, "purge_started", {"key": rec.s3_key})
    world.s3.delete_object(Bucket=world.bucket, Key=rec.s3_key, VersionId=rec.s3_version_id)
    report = purge_expired(world.ledger, world.store, execute=True)
    assert [r.action for r in report.results] == [PurgeAction.PURGED]
    (evidence,) = world.event_details(key, "purged")
    assert evidence["resumed"] is True and evidence["sidecar_deleted"] is True
    assert world.get(key).state is State.PURGED


def test_plain_bucket_purge_and_missing_object(plain_world: AuditWorld) -> None:
    gone, old = plain_world.archive(2, recorded_at=recent(100))
    gone_key = plain_world.get(gone).s3_key
    assert gone_key
    plain_world.s3.delete_object(Bucket=plain_world.bucket, Key=gone_key)
    report = purge_expired(plain_world.ledger, plain_world.store, execute=True)
    outcomes = {r.recording_uuid: r for r in report.results}
    assert outcomes[old].action is PurgeAction.PURGED
    assert (
        outcomes[gone].action is PurgeAction.REFUSED
        and "not in the bucket" in outcomes[gone].reason
    )
    assert not report.ok
    evidence = plain_world.event_details(old, "purged")[0]
    assert evidence["version_id"] is None and json.dumps(evidence)


def test_a_deletion_s3_did_not_do_is_never_recorded(world: AuditWorld) -> None:
    """The ledger lost the version id: deleting version "null" of a versioned key does nothing."""
    (key,) = world.archive(1, recorded_at=recent(100))
    rec = world.get(key)
    assert rec.s3_key
    world.sql("UPDATE recordings SET s3_version_id = NULL WHERE recording_uuid = :k", k=key)
    (result,) = purge_expired(world.ledger, world.store, execute=True).results
    assert result.action is PurgeAction.REFUSED and "still there" in result.reason
    assert versions_of(world.s3, world.bucket, rec.s3_key) == [rec.s3_version_id]
    assert world.get(key).state is State.ARCHIVED
    assert world.events(key)[-2:] == ["purge_started", "purge_refused"]


def test_a_later_retain_until_tag_wins_over_the_ledger(plain_world: AuditWorld) -> None:
    (key,) = plain_world.archive(1, recorded_at=recent(100))
    rec = plain_world.get(key)
    assert rec.s3_key
    plain_world.s3.put_object_tagging(
        Bucket=plain_world.bucket,
        Key=rec.s3_key,
        Tagging={
            "TagSet": [
                {"Key": "retention-mode", "Value": "governance"},
                {"Key": "retain-until", "Value": "2999-01-01T00:00:00Z"},
            ]
        },
    )
    (result,) = purge_expired(plain_world.ledger, plain_world.store, execute=False).results
    assert result.action is PurgeAction.REFUSED and "retain-until tag" in result.reason
