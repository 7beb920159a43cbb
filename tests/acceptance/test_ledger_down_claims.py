"""The ledger stops answering when a run writes its outcomes (issue 12): the run stops
(exit 1) and what it says about its claims is true.  When the ledger answers again
the claims are given back (pending, no attempt spent); when it does not, the message
names the claims it could not give back and says until when their lease holds them.

A real `run nightly` in this process (no Prefect API) against the simulator, moto and
both ledger backends; only the ledger's outcome writes fail (LedgerUnavailable, what
a lost connection raises), the rest of the ledger answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tenios_io.exceptions import LedgerUnavailable
from tenios_io.ledger import Ledger, State
from tests.acceptance.conftest import ArchiveWorld
from tests.fixtures.cli import CliResult


def fail_outcome_writes(monkeypatch: pytest.MonkeyPatch, *, times: int | None) -> None:
    """The ledger's outcome writes fail ``times`` times (None: always)."""
    real = Ledger.write_outcomes
    failed = [0]

    def write_outcomes(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        if times is None or failed[0] < times:
            failed[0] += 1
            raise LedgerUnavailable("ledger database unavailable: connection lost")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "write_outcomes", write_outcomes)


def test_claims_are_given_back_when_the_ledger_answers_again(
    no_prefect_world: ArchiveWorld,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = no_prefect_world
    uuids = world.sim.seed(3)
    world.register(uuids)
    fail_outcome_writes(monkeypatch, times=1)
    result = cli("run", "nightly", "--concurrency", "1", "--batch-size", "3")
    assert result.exit_code == 1, result.output
    assert "the ledger database is unavailable" in result.words
    assert "3 claim(s) released to pending, no attempts spent" in result.words
    assert "could not be released" not in result.words
    ledger = world.ledger()
    try:
        for u in uuids:
            rec = ledger.get(u)
            # Given back by the run (before: left in_progress although the message said
            # released), the attempt not spent.
            assert (rec.state, rec.attempts, rec.lease_token) == (State.PENDING, 0, None), u
        (stop,) = ledger.events_named(["run_stopped"])
        details = json.loads(stop["details"])
        assert (details["released"], details["unreleased"]) == (3, [])
    finally:
        ledger.engine.dispose()


def test_claims_the_ledger_does_not_take_back_are_named_with_their_lease_end(
    no_prefect_world: ArchiveWorld,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = no_prefect_world
    uuids = world.sim.seed(3)
    world.register(uuids)
    fail_outcome_writes(monkeypatch, times=None)
    result = cli("run", "nightly", "--concurrency", "1", "--batch-size", "3")
    assert result.exit_code == 1, result.output
    words = result.words
    assert "3 claim(s) could not be released" in words, words
    assert "stay in_progress until their lease ends (by" in words and "UTC at the latest" in words
    assert all(u in words for u in uuids), words
    assert "released to pending, no attempts spent" not in words
    ledger = world.ledger()
    try:
        assert {ledger.get(u).state for u in uuids} == {State.IN_PROGRESS}
        (stop,) = ledger.events_named(["run_stopped"])
        details = json.loads(stop["details"])
        assert (details["released"], sorted(details["unreleased"])) == (0, sorted(uuids))
    finally:
        ledger.engine.dispose()
