"""The progress bar of a run through Prefect follows the ledger
(tenios_io.run.progress_poll): against a ledger with known contents, on a real SQLite
file and the machine's PostgreSQL, each tick reports what ended since the run started
(and nothing from before), raises the total by what became due, skips a failed look
without raising, and the polling block ends with a final look."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.stats import run_counts
from tenios_io.run.progress_poll import LedgerProgress, polling
from tenios_io.testing import ProgressRecorder

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


class Clocked:
    """A ledger whose clock the test moves by hand."""

    def __init__(self, database_url: str) -> None:
        self.moment = T0
        self.engine = create_ledger_engine(database_url)
        self.ledger = Ledger(
            self.engine, actor="test", clock=lambda: self.moment, lease_clock="worker"
        )

    def at(self, minutes: float) -> datetime:
        self.moment = T0 + timedelta(minutes=minutes)
        return self.moment

    def register(self, n: int) -> None:
        self.ledger.register([NewRecording(str(uuid.uuid4())) for _ in range(n)])

    def end(self, *states: State) -> None:
        """Claim one recording per state and end its claim in that state."""
        claims = self.ledger.claim_batch(len(states), lease_seconds=300)
        assert len(claims) == len(states)
        for claim, state in zip(claims, states, strict=True):
            if state is State.ARCHIVED:
                self.ledger.complete(
                    claim.recording_uuid, claim.lease_token, {"sha256": "0" * 64, "size_bytes": 1}
                )
            else:
                self.ledger.fail(claim.recording_uuid, claim.lease_token, "test", state=state)


@pytest.fixture
def clocked(database_url: str) -> Iterator[Clocked]:
    ledger = Clocked(database_url)
    yield ledger
    ledger.engine.dispose()


def test_each_tick_reports_what_ended_since_the_start_and_what_became_due(
    clocked: Clocked,
) -> None:
    clocked.register(6)
    clocked.end(State.ARCHIVED, State.FAILED)  # a run before this one: not counted
    recorder = ProgressRecorder()
    poller = LedgerProgress(clocked.ledger, recorder, total=4, since=clocked.at(10))

    assert poller.tick()
    assert (recorder.done, recorder.found) == ([], 0)  # 4 due, as the bar was told

    clocked.at(11)
    clocked.end(State.ARCHIVED, State.MISSING)
    assert poller.tick()
    assert sorted(recorder.done) == ["archived", "missing"] and recorder.found == 0

    clocked.at(12)
    clocked.register(3)  # e.g. the drop sweep registered them during the run
    assert poller.tick()
    assert recorder.found == 3 and len(recorder.done) == 2

    clocked.at(13)
    (claim,) = clocked.ledger.claim_batch(1, lease_seconds=300)
    clocked.ledger.retry_later(claim.recording_uuid, claim.lease_token, "busy", delay_seconds=3600)
    clocked.end(State.ARCHIVED, State.ARCHIVED, State.CONFLICT)
    assert poller.tick()
    assert sorted(recorder.done) == ["archived"] * 3 + ["conflict", "missing"]
    assert recorder.found == 3  # the retry put off is neither done nor due: total kept

    assert poller.tick()  # nothing changed: nothing reported twice
    assert len(recorder.done) == poller.done == 5 and recorder.found == 3


def test_the_open_work_is_counted_only_up_to_the_cap(clocked: Clocked) -> None:
    clocked.register(5)
    since = clocked.at(5)
    clocked.ledger.claim_batch(3, lease_seconds=300)
    capped = run_counts(clocked.ledger, since, cap=2)
    assert (capped.in_progress, capped.due, capped.exact) == (2, 2, False)
    assert run_counts(clocked.ledger, since, cap=10).exact
    recorder = ProgressRecorder()
    # Not exact: "at least 2 + 2 open" says nothing about the total, which stays.
    assert LedgerProgress(clocked.ledger, recorder, total=1, since=since, cap=2).tick()
    assert recorder.found == 0
    # Exact: 3 claimed + 2 due are 4 more than the bar was told.
    assert LedgerProgress(clocked.ledger, recorder, total=1, since=since, cap=10).tick()
    assert recorder.found == 4


def test_a_failed_look_skips_the_tick_without_raising(tmp_path: Path) -> None:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")
    recorder = ProgressRecorder()
    poller = LedgerProgress(Ledger(engine), recorder, total=3, since=T0)
    assert poller.tick() is False
    assert (recorder.done, recorder.found) == ([], 0)
    with polling(poller, interval=3600):
        pass  # the final look fails too: nothing escapes the block
    engine.dispose()


def test_polling_ends_with_a_final_look(clocked: Clocked) -> None:
    clocked.register(2)
    recorder = ProgressRecorder()
    poller = LedgerProgress(clocked.ledger, recorder, total=2, since=clocked.at(1))
    # An interval no test waits for: only the final look on leaving the block reports.
    with polling(poller, interval=3600):
        clocked.at(2)
        clocked.end(State.ARCHIVED, State.ARCHIVED)
    assert recorder.done == ["archived", "archived"]
