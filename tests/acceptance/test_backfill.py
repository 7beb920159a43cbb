"""The backfill flow: import + archive, resumable without re-importing."""

from __future__ import annotations

from pathlib import Path

from flows.backfill import backfill
from tenios_io.ledger import State
from tenios_io.ops.prefect_setup import ServerRateLimit, apply_rate_limit, read_rate_limit
from tests.acceptance.conftest import ArchiveWorld


def test_backfill_imports_archives_and_resumes(world: ArchiveWorld, tmp_path: Path) -> None:
    uuids = world.sim.seed(9)
    source = tmp_path / "ids.csv"
    source.write_text(
        "recording_uuid,call_uuid,recorded_at\n"
        + "".join(
            f"{u},{world.sim.recording(u).call_uuid},2025-0{1 + n % 9}-15T10:00:00Z\n"
            for n, u in enumerate(uuids)
        )
    )
    first = backfill(str(source), concurrency=2, batch_size=2, limit=5, max_wait_seconds=30)
    assert first["imported"] == {"added": 9, "known": 0}
    assert first["counts"] == {"archived": 5}
    # With a Prefect server the API rate limit is the server's global limit (shared by
    # every worker process), applied by the operator: the run's own rate_limit uses it
    # and leaves it as applied (it used to create/overwrite it from its parameter).
    apply_rate_limit(20.0)
    try:
        second = backfill(str(source), concurrency=2, rate_limit=50.0, max_wait_seconds=30)
        limit = read_rate_limit()
    finally:
        apply_rate_limit(None)
    assert second["imported"] == {"added": 0, "known": 9}
    assert second["counts"] == {"archived": 4}
    assert limit == ServerRateLimit(per_second=20.0, burst=20, active=True)
    ledger = world.ledger()
    assert ledger.counts()[State.ARCHIVED] == 9
    rec = ledger.get(uuids[2])
    # the key's date is the recording's date from the file, not the day of the run
    assert rec.s3_key and "/2025/03/15/" in rec.s3_key
    assert ledger.verify_chain().ok
    ledger.engine.dispose()
