"""Claims a killed worker left behind are said, not hidden (issue 12 item 2): the next
run's summary and the report list them with how long until their lease ends."""

from __future__ import annotations

from flows.nightly import nightly_archive
from tenios_io.audit import build_report
from tenios_io.ledger import State
from tests.acceptance.conftest import ArchiveWorld


def test_the_next_run_and_the_report_list_a_dead_workers_claims(world: ArchiveWorld) -> None:
    stuck, free = world.sim.seed(2)
    world.register([stuck])
    ledger = world.ledger()
    (claim,) = ledger.claim_batch(1, lease_seconds=600, owner="prefect:nightly:dead@host")
    assert claim.recording_uuid == stuck  # this worker is then killed: the claim stays
    world.register([free])

    result = nightly_archive(max_wait_seconds=0)
    assert result["counts"] == {"archived": 1}  # the free one; the claimed one waits
    held = result["claimed_elsewhere"]
    assert held["count"] == 1
    (row,) = held["recordings"]
    assert row["recording_uuid"] == stuck and row["owner"] == "prefect:nightly:dead@host"
    assert 0 < row["lease_ends_in_seconds"] <= 600

    report = build_report(ledger, world.tmp / "report")
    assert [r.recording_uuid for r in report.in_progress] == [stuck]
    html = report.files["html"].read_text()
    assert "Claimed when the report was made" in html and stuck in html
    assert "being fetched and archived right now" not in html
    assert ledger.get(stuck).state is State.IN_PROGRESS
    ledger.engine.dispose()
