"""Checkpoints of the custody chain in the bucket, and the tampering they (and the chain) expose.

SQLite has no trigger, so every kind of tampering can be done there and must be
detected: an edited event, a deleted one, two reordered, the tail cut off, the
history re-hashed, the table emptied.  PostgreSQL's trigger refuses all of them;
a superuser who switches the trigger off is caught by the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tenios_io.audit import check_checkpoints, checkpoint_key, write_checkpoint
from tenios_io.custody.chain import GENESIS, canonical_json, event_hash
from tenios_io.exceptions import ChainBroken
from tenios_io.ledger import Ledger, NewEvent
from tenios_io.ledger.schema import upgrade
from tenios_io.ledger.tables import custody_events
from tenios_io.publish.checkpoints import list_checkpoint_keys
from tenios_io.store import parse_object_key
from tests.integration.test_audit_support import AuditWorld, make_world, versions_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def world(database_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(database_url, s3_client, locked_bucket, retention_mode="governance")
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def sqlite_world(sqlite_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    upgrade(sqlite_url)
    w = make_world(sqlite_url, s3_client, locked_bucket)
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def plain_world(sqlite_url: str, s3_client: S3Client, plain_bucket: str) -> Iterator[AuditWorld]:
    upgrade(sqlite_url)
    w = make_world(sqlite_url, s3_client, plain_bucket)
    yield w
    w.ledger.engine.dispose()


def test_checkpoint_is_written_locked_never_overwritten_and_recorded(world: AuditWorld) -> None:
    world.archive(2)
    head = world.ledger.chain_head()
    cp = write_checkpoint(world.ledger, world.store, actor="nightly")

    assert cp.key == checkpoint_key("recordings", head.seq)
    assert cp.key == f"recordings/_custody/checkpoints/{head.seq:020d}.json"
    assert parse_object_key("recordings", cp.key) is None  # outside the recordings layout
    assert (cp.last_seq, cp.last_hash, cp.event_count) == (head.seq, head.hash, head.seq)
    obj = world.s3.get_object(Bucket=world.bucket, Key=cp.key, VersionId=cp.version_id)
    body = obj["Body"].read()
    document = json.loads(body)
    assert document["last_hash"] == head.hash and document["format"].startswith("tenios-archive")
    assert hashlib.sha256(body).hexdigest() == cp.sha256
    assert obj["ObjectLockMode"] == "GOVERNANCE" and cp.retain_until is not None

    event = world.event_rows()[-1]
    assert (event["event"], event["actor"], event["recording_uuid"]) == (
        "checkpoint",
        "nightly",
        None,
    )
    assert json.loads(event["details"])["sha256"] == cp.sha256
    assert check_checkpoints(world.ledger, world.store).ok

    # The next one covers the first one's own event and points back at it.
    second = write_checkpoint(world.ledger, world.store)
    assert second.last_seq == cp.last_seq + 1 and second.previous is not None
    assert second.previous["key"] == cp.key
    report = check_checkpoints(world.ledger, world.store)
    assert report.ok and report.checked == 2 and report.newest is not None
    assert report.newest.key == second.key


def test_same_head_twice_is_accepted_not_overwritten(sqlite_world: AuditWorld) -> None:
    world = sqlite_world
    world.archive(1)
    head = world.ledger.chain_head()
    first = write_checkpoint(world.ledger, world.store)
    # A second writer that read the same head: take our checkpoint event away again.
    world.sql("DELETE FROM custody_events WHERE seq = :s", s=head.seq + 1)
    again = write_checkpoint(world.ledger, world.store)
    assert again.already_written and again.key == first.key
    assert versions_of(world.s3, world.bucket, first.key) == [first.version_id]


@pytest.mark.parametrize(
    "tamper",
    ["edit", "delete", "reorder"],
)
def test_sqlite_tampering_breaks_the_chain(sqlite_world: AuditWorld, tamper: str) -> None:
    """Before the newest checkpoint verify-chain finds it; after it, checkpointing refuses."""
    world = sqlite_world
    world.archive(2)
    cp = write_checkpoint(world.ledger, world.store)
    world.archive(2)
    rows = world.event_rows()
    before = (rows[3], rows[4])
    after = [r for r in rows if r["seq"] > cp.last_seq + 1][1:3]
    shift = 1 if tamper == "delete" else 0  # a deletion shows at the event after the gap
    for a, b in (before, after):
        _tamper(world, tamper, a, b)
        report = world.ledger.verify_chain()
        assert not report.ok and report.first_broken_seq == before[0]["seq"] + shift
    with pytest.raises(ChainBroken) as refused:
        write_checkpoint(world.ledger, world.store)
    assert refused.value.event_id == after[0]["seq"] + shift


def _tamper(world: AuditWorld, tamper: str, a: dict[str, object], b: dict[str, object]) -> None:
    if tamper == "edit":
        world.sql(
            "UPDATE custody_events SET details = :d WHERE seq = :s", d='{"size":1}', s=a["seq"]
        )
    elif tamper == "delete":
        world.sql("DELETE FROM custody_events WHERE seq = :s", s=a["seq"])
    else:  # swap two events' places in the sequence
        world.sql("UPDATE custody_events SET seq = -1 WHERE seq = :s", s=a["seq"])
        world.sql("UPDATE custody_events SET seq = :n WHERE seq = :s", n=a["seq"], s=b["seq"])
        world.sql("UPDATE custody_events SET seq = :n WHERE seq = -1", n=b["seq"])


def _rehash_from(ledger: Ledger, seq: int, details: str) -> None:
    """What an attacker with database access does: edit event ``seq``, recompute every hash."""
    with ledger.engine.begin() as conn:
        conn.execute(
            custody_events.update().where(custody_events.c.seq == seq).values(details=details)
        )
        rows = conn.execute(sa.select(custody_events).order_by(custody_events.c.seq)).mappings()
        prev = GENESIS
        for row in list(rows):
            new = event_hash(prev, row)
            conn.execute(
                custody_events.update()
                .where(custody_events.c.seq == row["seq"])
                .values(prev_hash=prev, hash=f"x{new[1:]}")  # avoid the unique index mid-update
            )
            conn.execute(
                custody_events.update().where(custody_events.c.seq == row["seq"]).values(hash=new)
            )
            prev = new


@pytest.mark.parametrize("tamper", ["truncate_tail", "truncate_table", "rehash"])
def test_sqlite_rewrites_that_keep_the_chain_whole_are_caught_by_the_checkpoint(
    sqlite_world: AuditWorld, tamper: str
) -> None:
    world = sqlite_world
    world.archive(3)
    cp = write_checkpoint(world.ledger, world.store)
    if tamper == "truncate_tail":
        world.sql("DELETE FROM custody_events WHERE seq >= :s", s=cp.last_seq - 2)
    elif tamper == "truncate_table":
        world.sql("DELETE FROM custody_events")
    else:
        _rehash_from(world.ledger, 2, canonical_json({"call_uuid": None, "forged": True}))
    assert world.ledger.verify_chain().ok  # the chain alone cannot tell
    report = check_checkpoints(world.ledger, world.store)
    assert not report.ok
    (problem,) = [p for p in report.problems if p.key == cp.key]
    expected_kind = "rewritten" if tamper == "rehash" else "missing_event"
    assert problem.kind == expected_kind and str(cp.last_seq) in problem.message
    with pytest.raises(ChainBroken):
        write_checkpoint(world.ledger, world.store)


def test_postgresql_trigger_refuses_and_a_superuser_bypass_is_caught(
    postgres_url: str, s3_client: S3Client, locked_bucket: str
) -> None:
    upgrade(postgres_url)
    world = make_world(postgres_url, s3_client, locked_bucket)
    try:
        world.archive(2)
        cp = write_checkpoint(world.ledger, world.store)
        for statement in (
            "UPDATE custody_events SET actor = 'mallory'",
            "DELETE FROM custody_events WHERE seq > 3",
            "TRUNCATE custody_events",
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                world.sql(statement)
        assert check_checkpoints(world.ledger, world.store).ok
        # A superuser switches the triggers off for the session and cuts the tail.
        with world.ledger.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(f"DELETE FROM custody_events WHERE seq > {cp.last_seq - 3}")
        assert world.ledger.verify_chain().ok
        report = check_checkpoints(world.ledger, world.store)
        assert [p.kind for p in report.problems] == ["missing_event"]
    finally:
        world.ledger.engine.dispose()


def test_checkpoint_deleted_or_replaced_in_an_unlocked_bucket(plain_world: AuditWorld) -> None:
    world = plain_world
    world.archive(1)
    first = write_checkpoint(world.ledger, world.store)
    second = write_checkpoint(world.ledger, world.store)
    assert first.lock_mode is None  # no Object Lock on this bucket
    world.s3.delete_object(Bucket=world.bucket, Key=first.key)
    forged = json.loads(world.s3.get_object(Bucket=world.bucket, Key=second.key)["Body"].read())
    forged["written_at"] = "2000-01-01T00:00:00.000000Z"
    world.s3.put_object(Bucket=world.bucket, Key=second.key, Body=json.dumps(forged).encode())
    report = check_checkpoints(world.ledger, world.store)
    assert sorted((p.key, p.kind) for p in report.problems) == sorted(
        [(first.key, "object_missing"), (second.key, "object_altered")]
    )


def test_a_rewritten_history_cannot_be_checkpointed_over_an_old_key(
    sqlite_world: AuditWorld,
) -> None:
    """Cut the tail, append until the head is back at an old checkpoint's seq: refused."""
    world = sqlite_world
    world.archive(1)
    cp = write_checkpoint(world.ledger, world.store)
    world.sql("DELETE FROM custody_events WHERE seq > :s", s=cp.last_seq - 1)
    world.ledger.append_events([NewEvent(None, "forged", {})])  # the old seq, another hash
    assert world.ledger.chain_head().seq == cp.last_seq
    assert list_checkpoint_keys(world.store) == [cp.key]
    with pytest.raises(ChainBroken, match="rewritten"):
        write_checkpoint(world.ledger, world.store)


def test_checkpoint_of_an_empty_ledger(world: AuditWorld) -> None:
    empty = write_checkpoint(world.ledger, world.store)
    assert (empty.last_seq, empty.last_hash) == (0, GENESIS)
    assert check_checkpoints(world.ledger, world.store).ok
    world.archive(1)
    assert write_checkpoint(world.ledger, world.store).previous == {
        "key": empty.key,
        "last_seq": 0,
        "last_hash": GENESIS,
    }
    assert check_checkpoints(world.ledger, world.store).ok
