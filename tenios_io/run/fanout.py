"""A run fanned out over several archive workers: each worker's plain summary, the
parent's aggregate of them, and when the parent may call the work done.

No Prefect here (flows/fanout.py starts and watches the worker runs); tested plainly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenios_io.ledger.stats import WorkProbe


def worker_summary(result: dict[str, Any]) -> dict[str, Any]:
    """A worker run's plain summary from its run result (``RunResult.to_dict()``):
    recordings it processed, archived, bytes, seconds, rate (recordings/s), failures."""
    counts: dict[str, int] = result.get("counts", {})
    recordings = int(result.get("recordings", sum(counts.values())))  # not attempts
    seconds = float(result.get("seconds", 0.0))
    return {
        "recordings": recordings,
        "archived": counts.get("archived", 0),
        "bytes": int(result.get("bytes_archived", 0)),
        "seconds": round(seconds, 3),
        "rate": round(recordings / seconds, 2) if seconds > 0 else 0.0,
        "failures": len(result.get("problems", [])),
        "exit_code": int(result.get("exit_code", 0)),
    }


def idle_note(result: dict[str, Any]) -> str | None:
    """Why a worker run processed no recording (None when it processed some): what its
    artifact says, so an idle worker is not mistaken for a stuck one."""
    if sum(result.get("counts", {}).values()):
        return None
    stopped = result.get("stopped") or {}
    if stopped.get("message"):
        return f"no recordings: {stopped['message']}"
    return (
        "no recordings: nothing was due when this worker claimed (the other workers had "
        "taken every due recording, or none was due yet)"
    )


def run_summary_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The fanned-out run's totals over its workers, one row per measure (the
    ``…-summary`` artifact a single run has too); no throughput when nothing was
    archived."""
    rows: list[dict[str, Any]] = [
        {"measure": "workers", "value": summary["workers"]},
        {"measure": "recordings", "value": summary["recordings"]},
        {"measure": "archived", "value": summary["archived"]},
        {"measure": "bytes archived", "value": summary["bytes"]},
        {"measure": "failures", "value": summary["failures"]},
        {"measure": "seconds", "value": summary["seconds"]},
    ]
    if summary["archived"]:
        rows.append({"measure": "throughput", "value": f"{summary['rate']}/s"})
    if summary["crashed"]:
        rows.append({"measure": "crashed workers", "value": ", ".join(summary["crashed"])})
    return rows


@dataclass
class WorkerRun:
    """One worker run as the parent saw it end: its name, final state, summary (None:
    it left none, it crashed or was killed), and whether it replaced a lost one."""

    name: str
    flow_run_id: str
    state: str
    summary: dict[str, Any] | None
    replacement: bool = False

    @property
    def lost(self) -> bool:
        return self.summary is None


def aggregate(runs: list[WorkerRun], seconds: float) -> dict[str, Any]:
    """The parent's summary: totals over every worker's summary, one row per worker,
    and the names of the workers that crashed (left no summary)."""
    done = [r.summary for r in runs if r.summary is not None]
    recordings = sum(s["recordings"] for s in done)
    return {
        "workers": len(runs),
        "recordings": recordings,
        "archived": sum(s["archived"] for s in done),
        "bytes": sum(s["bytes"] for s in done),
        "seconds": round(seconds, 3),
        "rate": round(recordings / seconds, 2) if seconds > 0 else 0.0,
        "failures": sum(s["failures"] for s in done),
        "crashed": [r.name for r in runs if r.lost],
        "replacements": [r.name for r in runs if r.replacement],
        "per_worker": [
            {"worker": r.name, "flow_run_id": r.flow_run_id, "state": r.state, **(r.summary or {})}
            for r in runs
        ],
    }


def table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The aggregate as table rows: one per worker, then the total."""
    rows: list[dict[str, Any]] = []
    for w in summary["per_worker"]:
        lost = "summary" not in w and "recordings" not in w
        rows.append(
            {
                "worker": w["worker"],
                "state": w["state"] + (" (crashed: no summary)" if lost else ""),
                "recordings": "" if lost else w["recordings"],
                "bytes": "" if lost else w["bytes"],
                "rate": "" if lost else f"{w['rate']}/s",
                "failures": "" if lost else w["failures"],
            }
        )
    rows.append(
        {
            "worker": "total",
            "state": f"{len(summary['crashed'])} crashed" if summary["crashed"] else "",
            "recordings": summary["recordings"],
            "bytes": summary["bytes"],
            "rate": f"{summary['rate']}/s",
            "failures": summary["failures"],
        }
    )
    return rows


def work_left(probe: WorkProbe) -> bool:
    """Something is claimable now or held under a lease (a live worker's, or a dead
    one's until it expires): the fan-out is not done."""
    return probe.due or probe.leased


@dataclass
class Watch:
    """The parent's decision each time it looks at its worker runs and the ledger:
    ``"done"`` (no open run, no work left), ``"wait"``, ``"replace"`` (work left that
    no live lease holds and no run starting, for ``grace_seconds``: start one more
    worker run, at most ``workers`` of them) or ``"lost"`` (the open runs had nothing
    to do for ``grace_seconds``, or no replacement is left: name them crashed)."""

    workers: int
    grace_seconds: float
    replacements: int = 0
    quiet_since: float | None = None

    def next(self, *, open_runs: int, starting: bool, probe: WorkProbe, now: float) -> str:
        left = work_left(probe)
        if open_runs == 0 and not left:
            return "done"
        if starting or (left and probe.live_lease):
            self.quiet_since = None
            return "wait"
        if self.quiet_since is None:
            self.quiet_since = now
        if now - self.quiet_since < self.grace_seconds:
            return "wait"
        self.quiet_since = None
        if left and self.replacements < self.workers:
            self.replacements += 1
            return "replace"
        return "lost"
