"""The fan-out's bookkeeping: a worker's plain summary, the parent's aggregate, the table."""

from __future__ import annotations

from tenios_io.ledger.stats import WorkProbe
from tenios_io.run.fanout import (
    Watch,
    WorkerRun,
    aggregate,
    idle_note,
    run_summary_table,
    table,
    work_left,
    worker_summary,
)


def _result(archived: int, failed: int, size: int, seconds: float) -> dict[str, object]:
    counts = {"archived": archived, **({"failed": failed} if failed else {})}
    problems = [{"recording_uuid": f"r{n}", "outcome": "failed"} for n in range(failed)]
    return {
        "counts": counts,
        "bytes_archived": size,
        "seconds": seconds,
        "problems": problems,
        "exit_code": 1 if failed else 0,
    }


def test_worker_summary_is_plain_counts_bytes_rate_failures() -> None:
    summary = worker_summary(_result(archived=30, failed=2, size=4096, seconds=8.0))
    assert summary == {
        "recordings": 32,
        "archived": 30,
        "bytes": 4096,
        "seconds": 8.0,
        "rate": 4.0,
        "failures": 2,
        "exit_code": 1,
    }


def test_the_aggregate_adds_up_and_names_a_crashed_worker() -> None:
    runs = [
        WorkerRun("w-a", "1", "Completed", worker_summary(_result(10, 0, 100, 5.0))),
        WorkerRun("w-b", "2", "Completed", worker_summary(_result(20, 1, 200, 5.0))),
        WorkerRun("w-c", "3", "Crashed", None),
        WorkerRun("w-d", "4", "Completed", worker_summary(_result(5, 0, 50, 1.0)), True),
    ]
    agg = aggregate(runs, seconds=10.0)
    assert (agg["recordings"], agg["archived"], agg["bytes"]) == (36, 35, 350)
    assert agg["failures"] == 1 and agg["rate"] == 3.6
    assert agg["crashed"] == ["w-c"] and agg["replacements"] == ["w-d"]
    rows = {row["worker"]: row for row in table(agg)}
    assert rows["w-c"]["state"] == "Crashed (crashed: no summary)"
    assert rows["w-c"]["recordings"] == ""
    assert rows["w-b"]["recordings"] == 21 and rows["w-b"]["failures"] == 1
    assert rows["total"]["recordings"] == 36 and rows["total"]["state"] == "1 crashed"


def _stats(due: int, in_progress: int, expired: int = 0) -> WorkProbe:
    """What the parent's probe says of a ledger with these counts."""
    return WorkProbe(due=due > 0, leased=in_progress > 0, live_lease=in_progress > expired)


def test_work_is_left_while_anything_is_due_or_leased() -> None:
    assert not work_left(_stats(0, 0))
    assert work_left(_stats(1, 0))
    assert work_left(_stats(0, 1))


def test_the_parent_is_done_when_no_run_is_open_and_nothing_is_left() -> None:
    watch = Watch(workers=3, grace_seconds=60)
    assert watch.next(open_runs=0, starting=False, probe=_stats(0, 0), now=0) == "done"


def test_the_parent_waits_while_runs_start_or_hold_live_leases() -> None:
    watch = Watch(workers=3, grace_seconds=60)
    assert watch.next(open_runs=3, starting=True, probe=_stats(500, 0), now=0) == "wait"
    assert watch.next(open_runs=3, starting=False, probe=_stats(400, 6), now=100) == "wait"
    assert watch.next(open_runs=2, starting=False, probe=_stats(0, 4, 4), now=200) == "wait"
    assert watch.quiet_since == 200  # only expired leases: nobody alive holds work


def test_work_nobody_holds_is_given_to_a_replacement_after_the_grace() -> None:
    watch = Watch(workers=1, grace_seconds=60)
    # A dead run's leases expired and every other run has ended.
    assert watch.next(open_runs=1, starting=False, probe=_stats(0, 5, 5), now=0) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(5, 0), now=59) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(5, 0), now=60) == "replace"
    assert watch.replacements == 1
    # The replacement is starting: wait; no second replacement past ``workers``.
    assert watch.next(open_runs=2, starting=True, probe=_stats(5, 0), now=61) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(5, 0), now=70) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(5, 0), now=130) == "lost"


def test_a_run_still_open_when_nothing_is_left_is_lost_after_the_grace() -> None:
    watch = Watch(workers=3, grace_seconds=60)
    assert watch.next(open_runs=1, starting=False, probe=_stats(0, 0), now=0) == "wait"
    # Work appeared again (a live lease): the clock starts over.
    assert watch.next(open_runs=1, starting=False, probe=_stats(0, 2), now=30) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(0, 0), now=40) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(0, 0), now=99) == "wait"
    assert watch.next(open_runs=1, starting=False, probe=_stats(0, 0), now=100) == "lost"


def test_an_idle_worker_says_why_and_a_busy_one_says_nothing() -> None:
    """Issue 27: a fanned-out worker that got no recordings says so in its artifact."""
    assert idle_note(_result(archived=3, failed=0, size=10, seconds=1.0)) is None
    idle = idle_note({"counts": {}, "seconds": 0.2})
    assert idle is not None and idle.startswith("no recordings: nothing was due")
    stopped = idle_note({"counts": {}, "stopped": {"message": "run stopped: ledger down"}})
    assert stopped == "no recordings: run stopped: ledger down"


def test_the_run_summary_table_totals_and_omits_throughput_when_nothing_was_archived() -> None:
    runs = [
        WorkerRun("w1", "id1", "COMPLETED", worker_summary(_result(4, 1, 400, 2.0))),
        WorkerRun("w2", "id2", "CRASHED", None),
    ]
    rows = {r["measure"]: r["value"] for r in run_summary_table(aggregate(runs, 4.0))}
    assert rows["workers"] == 2 and rows["recordings"] == 5 and rows["archived"] == 4
    assert rows["failures"] == 1 and rows["throughput"] == "1.25/s"
    assert rows["crashed workers"] == "w2"
    idle = [WorkerRun("w1", "id1", "COMPLETED", worker_summary({"counts": {}, "seconds": 1.0}))]
    rows = {r["measure"]: r["value"] for r in run_summary_table(aggregate(idle, 1.0))}
    assert rows["archived"] == 0 and "throughput" not in rows
