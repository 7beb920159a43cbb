"""The CLI offers only choices the command accepts (issue 12 item 9)."""

from __future__ import annotations

from tenios_io.cli.ledger import RequeueState
from tenios_io.ledger.states import REQUEUEABLE


def test_requeue_state_offers_exactly_the_requeueable_states() -> None:
    assert {s.value for s in RequeueState} == {s.value for s in REQUEUEABLE}


def test_the_run_summary_shows_a_dead_workers_claims() -> None:
    from rich.console import Console

    from tenios_io.cli._runview import claimed_elsewhere_table

    assert claimed_elsewhere_table({"claimed_elsewhere": {"count": 0, "recordings": []}}) is None
    table = claimed_elsewhere_table(
        {
            "claimed_elsewhere": {
                "count": 1,
                "recordings": [
                    {
                        "recording_uuid": "8101fcb3-3843-4db3-9829-f7ab586625fe",
                        "owner": "prefect:nightly:[dead]@host",
                        "lease_ends_in_seconds": 125.5,
                    }
                ],
            }
        }
    )
    assert table is not None
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert "8101fcb3-3843-4db3-9829-f7ab586625fe" in text and "2m 05s" in text
    assert "prefect:nightly:[dead]@host" in text and "worker died" in text
