"""The nightly flow end to end: every fault ends archived, re-runs upload nothing."""

from __future__ import annotations

import hashlib

from flows.nightly import nightly_archive
from tenios_io.ledger import NewRecording, State
from tenios_io.store import parse_object_key, sidecar_key
from tests.acceptance.conftest import ArchiveWorld


def _run(**kw: object) -> dict:  # type: ignore[type-arg]
    return nightly_archive(max_wait_seconds=60, **kw)  # type: ignore[return-value,arg-type]


def test_nightly_archives_everything_byte_exact_and_a_rerun_uploads_nothing(
    world: ArchiveWorld,
) -> None:
    uuids = world.sim.seed(12)
    world.register(uuids)
    result = _run(concurrency=3, batch_size=4)
    assert result["exit_code"] == 0
    assert result["counts"] == {"archived": 12}
    assert result["per_source"] == {"api": 12}
    ledger = world.ledger()
    for u in uuids:
        rec = ledger.get(u)
        assert rec.state is State.ARCHIVED
        assert rec.sha256 == world.sim.expected_sha256(u)
        assert rec.size_bytes == world.sim.expected_size(u)
        assert rec.s3_key and parse_object_key("recordings", rec.s3_key)
        body = world.s3.get_object(Bucket=world.bucket, Key=rec.s3_key)["Body"].read()  # type: ignore[attr-defined]
        assert hashlib.sha256(body).hexdigest() == world.sim.expected_sha256(u)
        events = [e["event"] for e in ledger.events(u)]
        assert events == [
            "registered",
            "claimed",
            "fetched",
            "uploaded",
            "verified",
            "archived",
        ]
    assert ledger.verify_chain().ok
    versions = world.versions()
    again = _run()
    assert again["counts"] == {} and again["exit_code"] == 0
    assert world.versions() == versions
    keys = [ledger.get(u).s3_key for u in uuids]
    # One object per recording: no sidecar beside it.
    assert all(versions[k] == 1 and sidecar_key(k) not in versions for k in keys if k)
    assert len(versions) == len(uuids)
    ledger.engine.dispose()


def test_every_injected_fault_ends_archived(world: ArchiveWorld) -> None:
    schedules = [
        ["500", "500"],
        ["503"],
        ["429"],
        ["truncate"],
        ["reset"],
        ["503", "truncate", "429"],
    ]
    uuids = [world.sim.add_recording(seconds=3, faults=s) for s in schedules]
    world.register(uuids)
    result = _run(concurrency=2, batch_size=3)
    assert result["exit_code"] == 0
    assert result["counts"].get("archived") == len(uuids), result
    ledger = world.ledger()
    assert all(ledger.get(u).sha256 == world.sim.expected_sha256(u) for u in uuids)
    ledger.engine.dispose()


def test_not_ready_404_is_retried_by_the_ledger_within_the_run(world: ArchiveWorld) -> None:
    late = world.sim.add_recording(seconds=3, not_ready=5.0)
    world.register([late])
    result = _run()
    assert result["counts"]["archived"] == 1 and result["counts"]["retry"] >= 1
    ledger = world.ledger()
    events = [e["event"] for e in ledger.events(late)]
    assert events[:3] == ["registered", "claimed", "retry_scheduled"]
    assert events[-1] == "archived" and ledger.get(late).attempts >= 2
    assert "not ready yet" in ledger.events(late)[2]["details"]
    ledger.engine.dispose()


def test_terminal_errors_end_failed_and_the_run_exits_1(world: ArchiveWorld) -> None:
    good = world.sim.seed(2)
    unknown = "0f0f0f0f-0000-4000-8000-000000000001"
    world.register(good)
    ledger = world.ledger()
    ledger.register([NewRecording(unknown)])
    from datetime import UTC, datetime, timedelta

    # registered long ago: a 404 now means missing, not "not ready yet"
    from tenios_io.ledger.tables import recordings

    with ledger.engine.begin() as conn:
        conn.execute(
            recordings.update()
            .where(recordings.c.recording_uuid == unknown)
            .values(discovered_at=datetime.now(UTC) - timedelta(days=3))
        )
    result = _run()
    assert result["counts"] == {"archived": 2, "missing": 1}
    assert result["exit_code"] == 0  # missing is reported, but only failed/conflict fail a run
    assert ledger.get(unknown).state is State.MISSING
    assert "404" in (ledger.get(unknown).last_error or "")
    ledger.engine.dispose()


def test_limit_and_budget(world: ArchiveWorld) -> None:
    uuids = world.sim.seed(6)
    world.register(uuids)
    first = _run(limit=4, batch_size=3, concurrency=1)
    assert first["counts"] == {"archived": 4}
    ledger = world.ledger()
    assert ledger.counts()[State.PENDING] == 2
    second = _run()
    assert second["counts"] == {"archived": 2}
    ledger.engine.dispose()
