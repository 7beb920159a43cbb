"""The custody log in the bucket (moto server, both ledger backends): tiles, entry bundles
and signed checkpoints written by write_checkpoint, extended consistently, and refused
when the bucket's log has been tampered with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tenios_io.audit import write_checkpoint
from tenios_io.custody import merkle, signing
from tenios_io.custody.checkpoints import open_checkpoint
from tenios_io.custody.layout import event_entry, log_prefix
from tenios_io.custody.tree import LogFiles, tree_reader
from tenios_io.exceptions import ChainBroken
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def world(database_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(database_url, s3_client, locked_bucket)
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def signer() -> signing.Signer:
    return signing.generate("archive.test")


def _read(world: AuditWorld, name: str) -> bytes:
    key = log_prefix(world.store.prefix) + name
    return world.s3.get_object(Bucket=world.bucket, Key=key)["Body"].read()


def test_checkpoints_sign_the_tree_of_every_event_and_extend_consistently(
    world: AuditWorld, signer: signing.Signer
) -> None:
    world.archive(3)
    write_checkpoint(world.ledger, world.store, signer=signer)
    first = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    rows = world.event_rows()
    # every event up to the checkpoint's own custody event (queued after it) is a leaf
    assert first.size == len(rows) - 1 and first.signed
    assert first.origin == f"tenios-archive/{world.bucket}/recordings"
    entries = [event_entry(row) for row in rows[: first.size]]
    leaves = merkle.list_reader([merkle.leaf_hash(e) for e in entries])
    assert first.root == merkle.root_hash(leaves, first.size)

    files = LogFiles(world.store, log_prefix(world.store.prefix))
    assert files.bundle(0, first.size) == entries  # the bucket holds the events themselves
    assert merkle.root_hash(tree_reader(files, first.size), first.size) == first.root
    bundle_key = files.key(merkle.entries_path(0, first.size))
    assert world.s3.head_object(Bucket=world.bucket, Key=bundle_key)["ObjectLockMode"] == (
        "GOVERNANCE"
    )

    world.archive(40)  # crosses a full tile (256 leaves)
    write_checkpoint(world.ledger, world.store, signer=signer)
    second = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    assert second.size > merkle.TILE_WIDTH > first.size
    kept = open_checkpoint(_read(world, f"checkpoints/{first.size:020d}"), signer.verifier)
    assert kept.root == first.root  # the earlier checkpoint is kept under its size
    reader = tree_reader(files, second.size)
    assert merkle.root_hash(reader, second.size) == second.root
    proof = merkle.consistency_proof(reader, first.size, second.size)
    merkle.verify_consistency(first.size, second.size, first.root, second.root, proof)
    assert files.bundle(0, merkle.TILE_WIDTH)[: first.size] == entries

    # nothing new: the same signed checkpoint is written again (Ed25519 is deterministic)
    before = _read(world, "checkpoint")
    world.ledger.integrate_all()
    write_checkpoint(world.ledger, world.store, signer=signer)
    after = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    assert after.size == second.size + 1  # only the previous checkpoint's custody event
    assert open_checkpoint(before, signer.verifier).size == second.size


def test_unsigned_without_a_key_then_signed(
    world: AuditWorld, signer: signing.Signer, caplog: pytest.LogCaptureFixture
) -> None:
    world.archive(1)
    write_checkpoint(world.ledger, world.store)
    assert "UNSIGNED" in caplog.text
    unsigned = open_checkpoint(_read(world, "checkpoint"), None)
    assert not unsigned.signed
    world.archive(1)
    write_checkpoint(world.ledger, world.store, signer=signer)
    assert open_checkpoint(_read(world, "checkpoint"), signer.verifier).size > unsigned.size


def test_a_tampered_tile_is_not_built_upon(world: AuditWorld, signer: signing.Signer) -> None:
    world.archive(2)
    write_checkpoint(world.ledger, world.store, signer=signer)
    size = open_checkpoint(_read(world, "checkpoint"), signer.verifier).size
    key = log_prefix(world.store.prefix) + merkle.tile_path(0, 0, size)
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=b"\x00" * 32 * size)
    world.archive(1)
    with pytest.raises(ChainBroken, match="cannot be extended"):
        write_checkpoint(world.ledger, world.store, signer=signer)


def test_a_tile_write_refused_midway_leaves_no_checkpoint(
    world: AuditWorld, signer: signing.Signer
) -> None:
    # tiles are written several at once: the first refusal must still stop the log
    # before a checkpoint names a tree the bucket does not hold
    world.archive(50)  # 300 events: a full entry bundle and more
    key = log_prefix(world.store.prefix) + merkle.entries_path(0)
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=b"\x00\x01x")
    with pytest.raises(ChainBroken, match="already exists with different content"):
        write_checkpoint(world.ledger, world.store, signer=signer)
    listed = world.s3.list_objects_v2(
        Bucket=world.bucket, Prefix=log_prefix(world.store.prefix) + "checkpoint"
    )
    assert listed.get("KeyCount") == 0


def test_a_late_writer_does_not_move_the_latest_checkpoint_back(
    world: AuditWorld, signer: signing.Signer
) -> None:
    from tenios_io.publish.log import _replace_latest

    world.archive(1)
    write_checkpoint(world.ledger, world.store, signer=signer)
    first = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    world.archive(1)
    write_checkpoint(world.ledger, world.store, signer=signer)
    second = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    files = LogFiles(world.store, log_prefix(world.store.prefix))
    _replace_latest(files, first)  # a concurrent run that integrated less, finishing last
    assert open_checkpoint(_read(world, "checkpoint"), signer.verifier).size == second.size


def _three_checkpoints(world: AuditWorld, signer: signing.Signer) -> list[bytes]:
    notes = []
    for _ in range(3):
        world.archive(1)
        write_checkpoint(world.ledger, world.store, signer=signer)
        notes.append(_read(world, "checkpoint"))
    return notes


def test_the_latest_checkpoint_is_replaced_only_if_unchanged_since_it_was_read(
    world: AuditWorld, signer: signing.Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race 80540a6 left open: run A reads the latest checkpoint (an old one), run B
    points it at a larger tree, then A writes its smaller one over B's.  A's write is
    conditional on what it read, so it is refused and A decides again on B's."""
    from tenios_io.publish.log import _replace_latest

    first, second, third = _three_checkpoints(world, signer)
    files = LogFiles(world.store, log_prefix(world.store.prefix))
    key = files.key("checkpoint")
    found = world.store.read_document(key)
    assert found is not None and found[0] == third
    assert world.store.replace_document(key, first, content_type="text/plain", etag=found[1])
    assert not world.store.replace_document(key, third, content_type="text/plain", etag=found[1])

    real_read = world.store.read_document
    reads: list[bytes | None] = []

    def read_then_lose_the_race(name: str) -> tuple[bytes, str] | None:
        seen = real_read(name)
        reads.append(seen[0] if seen else None)
        if len(reads) == 1:  # B replaces it right after A has read it
            assert seen is not None
            world.store.replace_document(name, third, content_type="text/plain", etag=seen[1])
        return seen

    monkeypatch.setattr(world.store, "read_document", read_then_lose_the_race)
    _replace_latest(files, open_checkpoint(second, signer.verifier))
    assert reads == [first, third]  # refused once, then it saw B's larger tree
    assert _read(world, "checkpoint") == third


def test_two_first_checkpoints_racing_for_the_latest(
    world: AuditWorld, signer: signing.Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No latest yet: the write is If-None-Match: *, so the second writer is refused
    and keeps the larger tree."""
    from tenios_io.publish.log import _replace_latest

    _first, second, third = _three_checkpoints(world, signer)
    files = LogFiles(world.store, log_prefix(world.store.prefix))
    key = files.key("checkpoint")
    world.s3.delete_object(Bucket=world.bucket, Key=key)  # the pointer carries no lock
    assert world.store.read_document(key) is None

    real_read = world.store.read_document
    calls = 0

    def read_then_lose_the_race(name: str) -> tuple[bytes, str] | None:
        nonlocal calls
        seen = real_read(name)
        calls += 1
        if calls == 1:
            assert seen is None
            assert world.store.replace_document(name, third, content_type="text/plain", etag=None)
        return seen

    monkeypatch.setattr(world.store, "read_document", read_then_lose_the_race)
    _replace_latest(files, open_checkpoint(second, signer.verifier))
    assert calls == 2 and _read(world, "checkpoint") == third
