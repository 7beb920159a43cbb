"""The custody log in the bucket (moto server, both ledger backends): tiles, entry bundles
and signed checkpoints written by write_checkpoint, extended consistently, and refused
when the bucket's log has been tampered with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tenios_io import signing
from tenios_io.audit import write_checkpoint
from tenios_io.custodylog import log_prefix, open_checkpoint
from tenios_io.custodylog.layout import event_entry
from tenios_io.custodylog.tree import LogFiles, tree_reader
from tenios_io.exceptions import ChainBroken
from tenios_io.ledger import merkle
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


def test_a_late_writer_does_not_move_the_latest_checkpoint_back(
    world: AuditWorld, signer: signing.Signer
) -> None:
    from tenios_io.custodylog.publish import _replace_latest

    world.archive(1)
    write_checkpoint(world.ledger, world.store, signer=signer)
    first = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    world.archive(1)
    write_checkpoint(world.ledger, world.store, signer=signer)
    second = open_checkpoint(_read(world, "checkpoint"), signer.verifier)
    files = LogFiles(world.store, log_prefix(world.store.prefix))
    _replace_latest(files, first)  # a concurrent run that integrated less, finishing last
    assert open_checkpoint(_read(world, "checkpoint"), signer.verifier).size == second.size
