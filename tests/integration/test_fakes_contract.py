"""The fakes in tenios_io.testing keep the promises of what they stand in for.

Every test runs against the fake and the real one: MemoryStore and ArchiveStore on a
moto server with Object Lock (over HTTP), FakeSource and ApiSource on the simulator
(over HTTP).  A fake that drifts from the real thing fails here, not silently in the
unit tests that use it (tests/unit/test_archive_one.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from tenios_io.api import ApiSource
from tenios_io.exceptions import ArchiveConflict, RecordingNotFound
from tenios_io.recording.source import FetchRequest, RecordingSource
from tenios_io.recording.spool import HashingSpool, Spooled
from tenios_io.simulator import Simulator
from tenios_io.store import ArchiveStore
from tenios_io.store.protocols import ArchiverStore
from tenios_io.testing import FakeSource, MemoryStore
from tests.fixtures.moto import sample_wav
from tests.fixtures.simulator import SimClient

DAY = date.today() - timedelta(days=3)
DAYS = 30


@pytest.fixture(params=["memory", "moto"])
def store(request: pytest.FixtureRequest) -> ArchiverStore:
    if request.param == "memory":
        return MemoryStore(bucket="contract", retention_days=DAYS)
    make_store: Callable[..., ArchiveStore] = request.getfixturevalue("make_store")
    return make_store(request.getfixturevalue("locked_bucket"), retention_days=DAYS)


def _archive(store: ArchiverStore, spooled: Spooled, rec: str, **kw: Any) -> Any:
    return store.archive(
        spooled,
        recording_uuid=rec,
        call_uuid=None,
        source="api",
        key_date=DAY,
        **kw,
    )


def test_an_upload_is_keyed_retained_and_seen_by_head(
    store: ArchiverStore, make_spooled: Callable[[bytes], Spooled]
) -> None:
    rec = str(uuid.uuid4())
    spooled = make_spooled(sample_wav(2000))
    obj = _archive(store, spooled, rec.upper())
    assert obj.key == f"{store.prefix}/{DAY:%Y/%m/%d}/{rec}.wav"
    assert (obj.bucket, obj.recording_uuid) == (store.bucket, rec)
    assert (obj.sha256, obj.size, obj.content_type) == (spooled.sha256, 2000, "audio/wav")
    assert obj.already_archived is False and obj.legal_hold is False and obj.version_id
    until = datetime.combine(DAY, time(0), tzinfo=UTC) + timedelta(days=DAYS)
    assert (obj.retention_mode, obj.retain_until, obj.retention_enforced) == (
        "governance",
        until,
        True,
    )
    info = store.head(obj.key)
    assert info is not None
    assert (info.version_id, info.sha256, info.size) == (obj.version_id, obj.sha256, 2000)
    assert (info.lock_mode, info.retain_until, info.legal_hold) == ("governance", until, False)
    assert store.head(obj.key, obj.version_id) is not None
    assert store.head(f"{store.prefix}/{DAY:%Y/%m/%d}/{uuid.uuid4()}.wav") is None


def test_the_same_bytes_again_are_already_archived_other_bytes_a_conflict(
    store: ArchiverStore, make_spooled: Callable[[bytes], Spooled]
) -> None:
    rec = str(uuid.uuid4())
    first = _archive(store, make_spooled(sample_wav(1500, seed=1)), rec)
    again = _archive(store, make_spooled(sample_wav(1500, seed=1)), rec)
    assert again.already_archived is True
    assert (again.key, again.version_id, again.sha256) == (
        first.key,
        first.version_id,
        first.sha256,
    )
    with pytest.raises(ArchiveConflict) as conflict:
        _archive(store, make_spooled(sample_wav(1500, seed=2)), rec)
    assert conflict.value.found_sha256 == first.sha256
    info = store.head(first.key)
    assert info is not None and info.sha256 == first.sha256  # never overwritten


def test_legal_holds_with_the_upload_and_later(
    store: ArchiverStore, make_spooled: Callable[[bytes], Spooled]
) -> None:
    held = _archive(
        store, make_spooled(sample_wav(900, seed=3)), str(uuid.uuid4()), legal_hold=True
    )
    assert held.legal_hold is True
    info = store.head(held.key)
    assert info is not None and info.legal_hold is True
    later = _archive(store, make_spooled(sample_wav(900, seed=4)), str(uuid.uuid4()))
    store.set_legal_hold(later.key, later.version_id, True)
    info = store.head(later.key, later.version_id)
    assert info is not None and info.legal_hold is True
    # Asked for on a re-run of an object archived without it: it is placed then.
    rerun = str(uuid.uuid4())
    _archive(store, make_spooled(sample_wav(900, seed=5)), rerun)
    again = _archive(store, make_spooled(sample_wav(900, seed=5)), rerun, legal_hold=True)
    assert again.already_archived and again.legal_hold
    info = store.head(again.key)
    assert info is not None and info.legal_hold is True


def test_a_document_is_written_once(store: ArchiverStore) -> None:
    key = f"{store.prefix}/_custody/manifests/{uuid.uuid4()}.jsonl"
    until = datetime.now(UTC) + timedelta(days=2)
    version = store.put_document(key, b'{"a":1}\n', retain_until=until)
    assert version
    assert store.put_document(key, b'{"a":1}\n', retain_until=until) == version
    with pytest.raises(ArchiveConflict):
        store.put_document(key, b'{"a":2}\n', retain_until=until)
    info = store.head(key)
    assert info is not None and (info.size, info.version_id) == (8, version)
    assert info.lock_mode == "governance"
    with pytest.raises(ValueError, match="timezone-aware"):
        store.put_document(f"{key}.x", b"x", retain_until=datetime(2030, 1, 1))


@pytest.fixture(params=["fake", "api"])
def source(request: pytest.FixtureRequest, simulator: Simulator) -> tuple[RecordingSource, str]:
    (rec,) = simulator.seed(1)
    if request.param == "fake":
        return FakeSource({rec: simulator.expected_bytes(rec)}), rec
    client: SimClient = request.getfixturevalue("tenios_client")
    return ApiSource(client), rec


def test_a_source_writes_the_whole_recording_into_the_sink(
    source: tuple[RecordingSource, str], simulator: Simulator, tmp_path: Any
) -> None:
    real, rec = source
    request = FetchRequest(rec)
    assert real.name == "api" and real.can_fetch(request)
    with HashingSpool(tmp_path) as spool:
        fetched = real.fetch(request, spool)
        spooled = spool.finish()
        assert spooled.path.read_bytes() == simulator.expected_bytes(rec)
    assert (fetched.source, fetched.size) == ("api", len(simulator.expected_bytes(rec)))
    assert fetched.declared_size in (None, fetched.size)
    assert real.after_archived(request, fetched) is None


def test_a_source_without_the_recording_says_not_found(
    source: tuple[RecordingSource, str], tmp_path: Any
) -> None:
    real, _rec = source
    with HashingSpool(tmp_path) as spool, pytest.raises(RecordingNotFound):
        real.fetch(FetchRequest(str(uuid.uuid4())), spool)
