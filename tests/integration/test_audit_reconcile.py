"""Three-way reconciliation against moto server, both ledger backends and a real SFTP server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING
from unittest import mock

import pytest

from tenios_io.audit import Category, drop_entries, reconcile, write_checkpoint
from tenios_io.exceptions import StoreUnavailable
from tenios_io.ledger import NewRecording
from tenios_io.publish.identity import bind_bucket
from tenios_io.publish.manifests import write_missing_manifests
from tenios_io.store import sidecar_key
from tests.fixtures.sshd import SftpServer
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


@pytest.fixture
def world(database_url: str, s3_client: S3Client, plain_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(database_url, s3_client, plain_bucket)
    yield w
    w.ledger.engine.dispose()


@pytest.fixture
def versioned_world(
    database_url: str, s3_client: S3Client, locked_bucket: str
) -> Iterator[AuditWorld]:
    """A bucket with versioning and Object Lock, as in production."""
    w = make_world(database_url, s3_client, locked_bucket)
    yield w
    w.ledger.engine.dispose()


def locations(report: object, category: Category) -> list[str]:
    return sorted(f.location for f in report.findings[category])  # type: ignore[attr-defined]


def test_a_consistent_archive_reconciles(world: AuditWorld) -> None:
    world.archive(3)
    world.store.check()  # the probe object
    write_checkpoint(world.ledger, world.store)  # a checkpoint object
    report = reconcile(world.ledger, world.store, drop=[])
    assert report.ok, report.findings
    # one object per recording (no sidecars), the batch's custody manifest, the probe, the
    # checkpoint, and the custody log's four objects (entry bundle, hash tile, numbered
    # and latest signed checkpoint)
    assert (report.listed_keys, report.archived_rows, report.drop_files) == (3 + 1 + 2 + 4, 3, 0)


def test_an_archive_of_an_earlier_version_reconciles_with_or_without_sidecars(
    world: AuditWorld,
) -> None:
    old = world.archive(2, earlier_version=True)
    world.archive(1)
    assert reconcile(world.ledger, world.store).ok
    key = world.get(old[0]).s3_key
    assert key
    world.s3.delete_object(Bucket=world.bucket, Key=sidecar_key(key))  # never required
    report = reconcile(world.ledger, world.store)
    assert report.ok, report.findings
    assert report.listed_keys == 3 + 1 + 1  # objects, the one sidecar left, one manifest


def test_every_category_is_found_and_counted(world: AuditWorld) -> None:
    gone_object, kept = world.archive(2)
    with mock.patch.object(world.store, "put_document", side_effect=StoreUnavailable("S3 down")):
        (unmanifested,) = world.archive(1)  # archived, but its manifest was not written
    obj_key = world.get(gone_object).s3_key
    assert obj_key
    world.s3.delete_object(Bucket=world.bucket, Key=obj_key)
    stranger = str(uuid.uuid4())
    stray = f"recordings/2026/01/02/{stranger}.wav"
    world.s3.put_object(Bucket=world.bucket, Key=stray, Body=b"RIFF")
    world.s3.put_object(Bucket=world.bucket, Key=stray + ".json", Body=b"{}")
    world.s3.put_object(Bucket=world.bucket, Key="recordings/notes.txt", Body=b"hi")
    # A known recording that failed, with an object anyway (uploaded by someone else).
    failed = str(uuid.uuid4())
    world.ledger.register([NewRecording(failed)])
    (claim,) = world.ledger.claim_batch(1, lease_seconds=60)
    world.ledger.fail(failed, claim.lease_token, "403 access denied")
    world.s3.put_object(Bucket=world.bucket, Key=f"recordings/2026/01/03/{failed}.wav", Body=b"x")
    unregistered = str(uuid.uuid4())
    drop = [(f"/drop/{unregistered}.wav", unregistered), (f"/drop/{kept}.wav", kept)]

    report = reconcile(world.ledger, world.store, drop)

    assert not report.ok
    assert report.counts() == {
        Category.OBJECTS_NOT_IN_LEDGER: 2,
        Category.OBJECTS_NOT_ARCHIVED: 1,
        Category.ARCHIVED_WITHOUT_OBJECT: 1,
        Category.ARCHIVED_WITHOUT_MANIFEST: 1,
        Category.UNRECOGNISED_KEYS: 1,
        Category.DROP_FILES_NOT_REGISTERED: 1,
        Category.CONTENT_UNDER_SEVERAL_IDS: 0,
        Category.UNLOGGED_VERSION: 0,
        Category.CURRENT_VERSION_NOT_ARCHIVED: 0,
        Category.DELETE_MARKER: 0,
    }
    assert locations(report, Category.OBJECTS_NOT_IN_LEDGER) == [stray, stray + ".json"]
    assert locations(report, Category.ARCHIVED_WITHOUT_OBJECT) == [obj_key]
    (no_manifest,) = report.findings[Category.ARCHIVED_WITHOUT_MANIFEST]
    assert no_manifest.recording_uuid == unmanifested
    # The next run writes it (what the pipeline's preflight does), and then all is well.
    written = write_missing_manifests(world.ledger, world.store, run_id="next", grace_seconds=0)
    assert [w.recordings for w in written] == [1]
    again = reconcile(world.ledger, world.store, drop)
    assert again.counts()[Category.ARCHIVED_WITHOUT_MANIFEST] == 0
    assert locations(report, Category.UNRECOGNISED_KEYS) == ["recordings/notes.txt"]
    assert locations(report, Category.DROP_FILES_NOT_REGISTERED) == [f"/drop/{unregistered}.wav"]
    (not_archived,) = report.findings[Category.OBJECTS_NOT_ARCHIVED]
    assert not_archived.recording_uuid == failed and "failed" in not_archived.detail


def test_recordings_being_archived_are_in_flight_not_problems(world: AuditWorld) -> None:
    pending = str(uuid.uuid4())
    world.ledger.register([NewRecording(pending)])
    world.s3.put_object(Bucket=world.bucket, Key=f"recordings/2026/01/03/{pending}.wav", Body=b"x")
    report = reconcile(world.ledger, world.store)
    assert report.ok and report.in_flight == 1 and report.drop_files is None


def test_the_real_sftp_drop_is_listed(sftp_server: SftpServer, world: AuditWorld) -> None:
    (known,) = world.archive(1)
    stranger, call_a, call_b = (str(uuid.uuid4()) for _ in range(3))
    names = (
        f"{call_a}_{known}.wav",  # a known recording wins whatever else the name holds
        f"call-{stranger}.wav",
        f"{call_b}_{uuid.uuid4()}.wav",  # two unknown UUIDs: matches no row
        "readme.txt",
        f".{uuid.uuid4()}.part",
    )
    for name in names:
        path = sftp_server.drop_dir / name
        path.write_bytes(b"RIFF0000WAVE")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    listed = drop_entries(sftp_server.settings(), world.ledger)
    assert listed is not None
    entries, unsettled = listed
    assert sorted(str(e.recording_uuid) for e in entries) == sorted([known, stranger, "None"])
    assert unsettled == 1
    report = reconcile(world.ledger, world.store, entries)
    assert report.drop_files == 3
    assert locations(report, Category.DROP_FILES_NOT_REGISTERED) == sorted(
        str(sftp_server.drop_dir / name) for name in names[1:3]
    )


def test_one_sha256_under_several_recording_ids_is_found(world: AuditWorld) -> None:
    # The night: a recording archived once under its id and once under its call's.
    (first,) = world.archive(1)
    twin = str(uuid.uuid4())
    world.source.payloads[twin] = world.source.payloads[first]
    world.ledger.register([NewRecording(twin)])
    (claim,) = world.ledger.claim_batch(1, lease_seconds=60)
    world.archiver().archive_batch([claim])
    assert world.get(twin).sha256 == world.get(first).sha256
    report = reconcile(world.ledger, world.store)
    found = report.findings[Category.CONTENT_UNDER_SEVERAL_IDS]
    assert sorted(f.recording_uuid or "" for f in found) == sorted([first, twin])
    assert all(f.location == world.get(first).sha256 for f in found)
    assert not report.ok


def test_no_drop_configured_means_no_listing() -> None:
    from tenios_io.config import Settings

    assert drop_entries(Settings(), None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_every_object_version_is_accounted_for(versioned_world: AuditWorld, forgery: str) -> None:
    world = versioned_world
    world.store.check()  # the probe
    bind_bucket(world.ledger, world.store)  # the ledger id
    ids: list[str] = []
    for _ in range(3):  # three runs: manifests, checkpoints, the latest one replaced twice
        ids += world.archive(2)
        write_checkpoint(world.ledger, world.store)
    latest = "recordings/_custody/log/checkpoint"
    assert len(versions_of(world.s3, world.bucket, latest)) == 3
    clean = reconcile(world.ledger, world.store)
    assert clean.ok, clean.findings
    assert clean.listed_versions == clean.listed_keys + 2

    forged_rec, hidden_rec = world.get(ids[1]), world.get(ids[4])
    assert forged_rec.s3_key and hidden_rec.s3_key and forged_rec.s3_version_id
    forged, _ = forge_version(world.s3, world.bucket, forged_rec.s3_key, forgery)
    marker = hide_under_delete_marker(world.s3, world.bucket, hidden_rec.s3_key)
    report = reconcile(world.ledger, world.store)

    assert not report.ok
    assert {c: n for c, n in report.counts().items() if n} == {
        Category.UNLOGGED_VERSION: 1,
        Category.CURRENT_VERSION_NOT_ARCHIVED: 1,
        Category.DELETE_MARKER: 1,
        Category.ARCHIVED_WITHOUT_OBJECT: 1,  # hidden: a GET answers 404
    }
    for category in (Category.UNLOGGED_VERSION, Category.CURRENT_VERSION_NOT_ARCHIVED):
        (found,) = report.findings[category]
        assert (found.location, found.recording_uuid) == (forged_rec.s3_key, ids[1])
        assert forged in found.detail and forged_rec.s3_version_id in found.detail
        assert "delete-object" in found.detail
    (hidden,) = report.findings[Category.DELETE_MARKER]
    assert (hidden.location, hidden.recording_uuid) == (hidden_rec.s3_key, ids[4])
    assert marker in hidden.detail and "404" in hidden.detail
