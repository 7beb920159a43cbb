"""The fan-out's bookkeeping: a worker's plain summary, the parent's aggregate, the table."""

from __future__ import annotations

from datetime import UTC, datetime

from tenios_io.fanout import WorkerRun, aggregate, table, work_left, worker_summary
from tenios_io.ledger.stats import LedgerStats


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


def _stats(due: int, in_progress: int) -> LedgerStats:
    return LedgerStats(
        at=datetime.now(UTC),
        due=due,
        oldest_due_seconds=0.0,
        in_progress=in_progress,
        expired_leases=0,
        last_24h={},
    )


def test_work_is_left_while_anything_is_due_or_leased() -> None:
    assert not work_left(_stats(0, 0))
    assert work_left(_stats(1, 0))
    assert work_left(_stats(0, 1))
