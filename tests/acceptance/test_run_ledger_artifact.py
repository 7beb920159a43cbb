"""Every archiving run ends with the ledger stats as a markdown artifact (issue 15):
what an operator sees in the Prefect UI is the backlog after the run, counted from
the ledger the run just worked on."""

from __future__ import annotations

from typing import Any

from flows.nightly import nightly_archive
from tenios_io.ledger import NewRecording
from tests.acceptance.conftest import ArchiveWorld


def artifacts(flow_run_id: Any) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found}


def test_a_nightly_run_ends_with_the_ledger_stats(world: ArchiveWorld) -> None:
    ledger = world.ledger()
    # One recording another worker holds for an hour: in progress after the run too.
    held = "00000000-0000-4000-8000-00000000beef"
    ledger.register([NewRecording(held)])
    assert [c.recording_uuid for c in ledger.claim_batch(1, lease_seconds=3600)] == [held]
    ledger.engine.dispose()
    world.register(world.sim.seed(4))
    state = nightly_archive(max_wait_seconds=0, concurrency=2, batch_size=2, return_state=True)  # type: ignore[call-overload]
    assert state.is_completed()
    markdown = artifacts(state.state_details.flow_run_id)["nightly-archive-ledger"]
    assert "| archived, last 24 h | 4 |" in markdown
    assert "| due now | 0 |" in markdown
    assert "| in progress | 1 (0 with expired leases) |" in markdown
    assert "| failed, last 24 h | 0 |" in markdown
