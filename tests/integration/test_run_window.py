"""The archiving loop is a sliding window (issue 13): a new batch is claimed as soon as
any batch in flight finishes, never more than ``concurrency`` at once, on a real ledger.
The batches' results are set by the test through the futures the loop waits on."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest

from tenios_io.exceptions import LedgerUnavailable
from tenios_io.ledger import Claim, Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.run.archiver import Outcome, RecordingResult
from tenios_io.run.loop import BatchNotStarted, RunSummary, archive_until_done
from tenios_io.run.stop import RunGuard


class Batches:
    """The loop's submit: remembers each batch and its future; tells who waits."""

    def __init__(self) -> None:
        self.submitted: list[tuple[list[Claim], Future[list[RecordingResult]]]] = []
        self.changed = threading.Condition()

    def __call__(self, _archiver: Any, claims: list[Claim], _deadline: float | None) -> Any:
        future: Future[list[RecordingResult]] = Future()
        with self.changed:
            self.submitted.append((claims, future))
            self.changed.notify_all()
        return future

    def wait_for(self, n: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.submitted) >= n, timeout=60), n

    def finish(self, i: int) -> None:
        claims, future = self.submitted[i]
        future.set_result([RecordingResult(c.recording_uuid, Outcome.ARCHIVED) for c in claims])


def archived_at_once(_archiver: Any, claims: list[Claim], _deadline: float | None) -> Any:
    """A submit whose batches are done at once, every recording archived."""
    future: Future[list[RecordingResult]] = Future()
    future.set_result([RecordingResult(c.recording_uuid, Outcome.ARCHIVED) for c in claims])
    return future


def run_window(
    ledger: Ledger,
    submit: Any,
    *,
    concurrency: int,
    batch_size: int,
    guard: RunGuard | None = None,
) -> RunSummary:
    """The run loop with ``submit`` as its batches, until nothing is due."""
    return archive_until_done(
        ledger,
        SimpleNamespace(guard=guard or RunGuard()),  # type: ignore[arg-type]
        submit,
        owner="window-test",
        limit=None,
        concurrency=concurrency,
        batch_size=batch_size,
        lease_seconds=600,
        max_attempts=None,
        time_budget_minutes=None,
        max_wait_seconds=0,
    )


def test_a_batch_is_claimed_as_soon_as_any_in_flight_batch_finishes(database_url: str) -> None:
    upgrade(database_url)
    ledger = Ledger(create_ledger_engine(database_url), actor="test")
    keys = [f"00000000-0000-4000-8000-{i:012d}" for i in range(5)]
    ledger.register([NewRecording(k) for k in keys])
    batches = Batches()
    summaries: list[RunSummary] = []
    loop = threading.Thread(
        target=lambda: summaries.append(run_window(ledger, batches, concurrency=2, batch_size=1))
    )
    loop.start()
    batches.wait_for(2)
    assert len(batches.submitted) == 2  # the window is full: nothing more is claimed
    batches.finish(1)  # the second finishes first: the first is still in flight
    batches.wait_for(3)
    assert not batches.submitted[0][1].done() and len(batches.submitted) == 3
    for i in (0, 2):
        batches.finish(i)
    batches.wait_for(5)
    for i in (3, 4):
        batches.finish(i)
    loop.join(timeout=60)
    assert not loop.is_alive()
    (summary,) = summaries
    assert summary.counts == {"archived": 5}
    claimed = [c.recording_uuid for claims, _ in batches.submitted for c in claims]
    assert sorted(claimed) == keys
    assert {ledger.get(k).state for k in keys} == {State.IN_PROGRESS}  # claimed once each
    ledger.engine.dispose()


def test_a_crashed_batch_is_reported_failed_and_the_loop_goes_on(database_url: str) -> None:
    upgrade(database_url)
    ledger = Ledger(create_ledger_engine(database_url), actor="test")
    keys = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]
    ledger.register([NewRecording(k) for k in keys])

    def submit(_archiver: Any, claims: list[Claim], _deadline: float | None) -> Any:
        future: Future[list[RecordingResult]] = Future()
        if claims[0].recording_uuid == keys[1]:
            future.set_exception(RuntimeError("database went away"))
        else:
            future.set_result([RecordingResult(c.recording_uuid, Outcome.ARCHIVED) for c in claims])
        return future

    summary = run_window(ledger, submit, concurrency=2, batch_size=1)
    assert summary.counts == {"archived": 2, "failed": 1}
    (problem,) = summary.problems
    assert problem.recording_uuid == keys[1] and "database went away" in (problem.reason or "")
    ledger.engine.dispose()


class CutSequencerLedger(Ledger):
    """A ledger whose connection is cut during every sequencer turn (what a PostgreSQL
    restart does to a connection in use), and only then."""

    turns = 0

    def integrate(self, *args: Any, **kwargs: Any) -> Any:
        self.turns += 1
        raise LedgerUnavailable("ledger database unavailable: terminating connection")


def test_a_cut_sequencer_turn_does_not_end_the_run(database_url: str) -> None:
    """The sequencer's turn in the loop is not the run's work: when its connection is
    cut the run goes on (the events stay queued for the next turn or the checkpoint).
    Before, the LedgerUnavailable escaped the loop and the flow failed with a traceback
    (seen in CI: test_run_faults::test_postgresql_restart_mid_run, when the cut hit the
    main thread's turn rather than a batch's write)."""
    upgrade(database_url)
    ledger = CutSequencerLedger(create_ledger_engine(database_url), actor="test")
    keys = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]
    ledger.register([NewRecording(k) for k in keys])

    summary = run_window(ledger, archived_at_once, concurrency=1, batch_size=3)
    assert ledger.turns >= 1  # the turn was taken, and cut
    assert summary.counts == {"archived": 3}
    assert summary.stopped is None
    ledger.engine.dispose()


class CutClaimLedger(Ledger):
    """A ledger whose connection is cut during the loop's ``cut``-th call of ``step``
    (``claim_batch``, ``drain_intake`` or ``next_due_at``), and only then."""

    def __init__(self, *args: Any, step: str, cut: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step, self.cut, self.calls = step, cut, 0

    def _maybe_cut(self) -> None:
        self.calls += 1
        if self.calls == self.cut:
            raise LedgerUnavailable("ledger database unavailable: terminating connection")

    def claim_batch(self, *args: Any, **kwargs: Any) -> Any:
        if self.step == "claim_batch":
            self._maybe_cut()
        return super().claim_batch(*args, **kwargs)

    def drain_intake(self, *args: Any, **kwargs: Any) -> Any:
        if self.step == "drain_intake":
            self._maybe_cut()
        return super().drain_intake(*args, **kwargs)

    def next_due_at(self, *args: Any, **kwargs: Any) -> Any:
        if self.step == "next_due_at":
            self._maybe_cut()
        return super().next_due_at(*args, **kwargs)


@pytest.mark.parametrize("step", ["claim_batch", "drain_intake"])
def test_a_cut_claim_or_intake_stops_the_run_cleanly(database_url: str, step: str) -> None:
    """The loop's own ledger steps (the claim, the intake drain) run in its thread: when
    the connection is cut there, the run stops as a ledger failure in a batch stops it
    (the batches already claimed finish, nothing more is claimed, the summary and the
    ledger's run_stopped event say the ledger was the cause) instead of the
    LedgerUnavailable escaping the loop (a traceback, no summary), as it did before."""
    upgrade(database_url)
    ledger = CutClaimLedger(create_ledger_engine(database_url), actor="test", step=step, cut=2)
    keys = [f"00000000-0000-4000-8000-{i:012d}" for i in range(5)]
    ledger.register([NewRecording(k) for k in keys])

    # The first claim fills both slots (two batches of one); the loop's second claim
    # (or its second intake drain, which comes before that claim) is cut.
    summary = run_window(ledger, archived_at_once, concurrency=2, batch_size=1)
    assert ledger.calls == 2
    assert summary.counts == {"archived": 2}
    assert summary.stopped is not None and "ledger" in summary.stopped.cause.lower()
    states = [ledger.get(k).state for k in keys]
    assert states.count(State.IN_PROGRESS) == 2  # the two claimed (this test's batches
    assert states.count(State.PENDING) == 3  # write no outcomes), the rest untouched
    (stop,) = ledger.events_named(["run_stopped"])
    assert "LedgerUnavailable" in stop["details"]
    ledger.engine.dispose()


def test_a_cut_look_for_retries_ends_the_run_with_the_ledger_as_cause(database_url: str) -> None:
    """Nothing left to claim: the loop asks the ledger when the next retry is due.  A cut
    connection there ends the run with its summary (everything claimed was archived)
    and the ledger named as the cause, rather than a traceback."""
    upgrade(database_url)
    ledger = CutClaimLedger(
        create_ledger_engine(database_url), actor="test", step="next_due_at", cut=1
    )
    keys = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]
    ledger.register([NewRecording(k) for k in keys])

    summary = run_window(ledger, archived_at_once, concurrency=2, batch_size=2)
    assert ledger.calls == 1
    assert summary.counts == {"archived": 3}
    assert summary.stopped is not None and "ledger" in summary.stopped.cause.lower()
    ledger.engine.dispose()


def test_a_batch_the_runner_refused_to_start_stops_the_run_and_gives_its_claims_back(
    database_url: str,
) -> None:
    """A Prefect flow run being cancelled aborts the tasks it starts: the loop gives
    that batch's claims back (no attempt spent), claims nothing more, and waits for the
    batch already in flight, which finishes."""
    upgrade(database_url)
    ledger = Ledger(create_ledger_engine(database_url), actor="test")
    keys = [f"00000000-0000-4000-8000-{i:012d}" for i in range(6)]
    ledger.register([NewRecording(k) for k in keys])
    batches = Batches()
    summaries: list[RunSummary] = []
    guard = RunGuard()
    loop = threading.Thread(
        target=lambda: summaries.append(
            run_window(ledger, batches, concurrency=2, batch_size=2, guard=guard)
        )
    )
    loop.start()
    batches.wait_for(2)
    refused, _ = batches.submitted[1]
    batches.submitted[1][1].set_exception(BatchNotStarted("flow run must be running"))
    batches.finish(0)
    loop.join(timeout=60)
    assert not loop.is_alive()
    assert len(batches.submitted) == 2  # nothing claimed after the refusal
    (summary,) = summaries
    assert summary.counts == {"archived": 2, "released": 2}
    assert summary.stopped is not None and "being cancelled" in summary.stopped.cause
    for claim in refused:
        rec = ledger.get(claim.recording_uuid)
        assert (rec.state, rec.attempts, rec.lease_token) == (State.PENDING, 0, None)
    (stop,) = ledger.events_named(["run_stopped"])
    assert "BatchNotStarted" in stop["details"]
    ledger.engine.dispose()
