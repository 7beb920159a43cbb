"""The CLI offers only choices the command accepts (issue 12 item 9)."""

from __future__ import annotations

from tenios_io.cli.ledger import RequeueState
from tenios_io.ledger.states import REQUEUEABLE


def test_requeue_state_offers_exactly_the_requeueable_states() -> None:
    assert {s.value for s in RequeueState} == {s.value for s in REQUEUEABLE}
