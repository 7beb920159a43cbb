"""One archival run's bookkeeping: claim rounds, waiting for retries, the summary.

The flows call these; they hold no Prefect code so they are tested plainly.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenios_io.archive import PROBLEMS, Outcome, RecordingResult
from tenios_io.ledger import Claim, Ledger
from tenios_io.runstop import RunStop

_SHORT = 200


def claim_round(
    ledger: Ledger,
    *,
    batches: int,
    batch_size: int,
    remaining: int | None,
    lease_seconds: float,
    owner: str | None = None,
    max_attempts: int | None = None,
) -> list[list[Claim]]:
    """Up to ``batches`` batches of up to ``batch_size`` claims (fewer near ``remaining``).

    The producers' intake is drained first (every run, every round): what other systems
    inserted is registered and claimable in this very round.
    """
    ledger.drain_intake(actor=owner)
    out: list[list[Claim]] = []
    for _ in range(batches):
        size = batch_size if remaining is None else min(batch_size, remaining)
        if size <= 0:
            break
        batch = ledger.claim_batch(
            size, lease_seconds=lease_seconds, owner=owner, max_attempts=max_attempts
        )
        if not batch:
            break
        out.append(batch)
        if remaining is not None:
            remaining -= len(batch)
    return out


def wait_for_due(
    ledger: Ledger,
    *,
    horizon_seconds: float,
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
) -> bool:
    """If something becomes claimable within the horizon (and before the deadline),
    wait until then and return True; otherwise return False at once."""
    due = ledger.next_due_at()
    if due is None:
        return False
    wait = max(0.0, (due - ledger.clock_now()).total_seconds()) + 0.05
    if wait > horizon_seconds or (deadline is not None and clock() + wait >= deadline):
        return False
    (stop or threading.Event()).wait(wait)
    return True


@dataclass
class RunSummary:
    """What a run did: per outcome counts, bytes, throughput, failures with reasons."""

    started_at: datetime
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    per_source: Counter[str] = field(default_factory=Counter)
    bytes_archived: int = 0
    problems: list[RecordingResult] = field(default_factory=list)
    finished: float | None = None
    stopped: RunStop | None = None
    """Set when a run-wide failure stopped the run early (runstop.py)."""

    def add(self, results: Iterable[RecordingResult]) -> None:
        for result in results:
            self.counts[result.outcome.value] += 1
            if result.outcome in (Outcome.ARCHIVED, Outcome.ALREADY_ARCHIVED):
                self.per_source[_source_kind(result.source)] += 1
            if result.outcome is Outcome.ARCHIVED:
                self.bytes_archived += result.size
            if result.outcome in PROBLEMS or result.outcome is Outcome.MISSING:
                self.problems.append(result)

    def finish(self) -> None:
        self.finished = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def processed(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """The stop's code (2 configuration / credentials, 1 otherwise) when a run-wide
        failure stopped the run; else 0 when nothing ended failed or conflict, else 1."""
        if self.stopped is not None:
            return self.stopped.exit_code
        return 1 if any(self.counts[o.value] for o in PROBLEMS) else 0

    def table(self) -> list[dict[str, Any]]:
        """Rows for the summary table (artifact and CLI)."""
        secs = max(self.seconds, 1e-9)
        rows: list[dict[str, Any]] = [
            {"outcome": outcome.value, "recordings": self.counts[outcome.value]}
            for outcome in Outcome
            if self.counts[outcome.value]
        ]
        rows.append({"outcome": "total", "recordings": self.processed})
        for row in rows:
            row["bytes"] = self.bytes_archived if row["outcome"] in ("archived", "total") else ""
        rows.append(
            {
                "outcome": "throughput",
                "recordings": f"{self.processed / secs:.1f}/s",
                "bytes": f"{self.bytes_archived / secs / 2**20:.1f} MiB/s",
            }
        )
        return rows

    def failures_markdown(self) -> str:
        """The problems of this run, with reasons, as Markdown."""
        if not self.problems:
            return "No recording ended failed, missing or conflict in this run."
        lines = [
            f"# {len(self.problems)} recording(s) need attention",
            "",
            "| recording_uuid | outcome | reason |",
            "|---|---|---|",
        ]
        for p in self.problems:
            reason = (p.reason or "").replace("|", "\\|").replace("\n", " ")[:_SHORT]
            lines.append(f"| `{p.recording_uuid}` | {p.outcome.value} | {reason} |")
        lines += ["", "Requeue after fixing the cause: `tenios-archive ledger requeue UUID...`."]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A plain summary (the flow's return value)."""
        return {
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "counts": dict(self.counts),
            "per_source": dict(self.per_source),
            "bytes_archived": self.bytes_archived,
            "exit_code": self.exit_code,
            "stopped": self.stopped.to_dict() if self.stopped else None,
            "problems": [
                {"recording_uuid": p.recording_uuid, "outcome": p.outcome.value, "reason": p.reason}
                for p in self.problems
            ],
        }


def _source_kind(source: str | None) -> str:
    return (source or "unknown").split(":", 1)[0]


def claims_of_others(ledger: Ledger, owner: str, *, limit: int = 20) -> dict[str, Any]:
    """Recordings another worker holds at the start of a run (claimed, lease running):
    a worker that was killed leaves them so until its lease ends.  For the summary:
    ``{"count", "recordings": [{"recording_uuid", "owner", "lease_ends_in_seconds"}]}``."""
    total, rows = ledger.in_progress(limit=limit)
    now = ledger.clock_now()
    held = [
        {
            "recording_uuid": rec.recording_uuid,
            "owner": rec.lease_owner,
            "lease_ends_in_seconds": max(0.0, (rec.lease_expires_at - now).total_seconds())
            if rec.lease_expires_at is not None
            else None,
        }
        for rec in rows
        if rec.lease_owner != owner
    ]
    return {"count": total, "recordings": held}
