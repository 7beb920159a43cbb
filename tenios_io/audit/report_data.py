"""What the compliance report holds: the facts :func:`~tenios_io.audit.report.build_report`
gathers, which the HTML page (:mod:`~tenios_io.audit.report_html`) and the summary show."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from tenios_io.audit.retention import RetentionOverview
from tenios_io.custody.chain import format_time
from tenios_io.ledger import ChainReport, Recording, State
from tenios_io.publish.checkpoints import CheckpointReport
from tenios_io.publish.log import LoggedCheckpoint, unsigned_log_problem

CheckStatus = Literal["passed", "failed", "not checked", "incomplete"]

#: At most this many rows per table (the CSV / JSONL exports have them all).
MAX_ROWS = 500

#: States whose recordings the report lists as failures, with their last error.
FAILURE_STATES = (State.FAILED, State.MISSING, State.CONFLICT)


@dataclass(frozen=True)
class Period:
    """UTC days from ``start`` to ``end`` inclusive; None on either side = unbounded."""

    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def start_at(self) -> datetime | None:
        return datetime.combine(self.start, time(0), tzinfo=UTC) if self.start else None

    @property
    def end_before(self) -> datetime | None:
        """The first moment after the period."""
        if self.end is None:
            return None
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UTC)

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return False
        start, end = self.start_at, self.end_before
        return (start is None or moment >= start) and (end is None or moment < end)

    def __str__(self) -> str:
        if self.start is None and self.end is None:
            return "all time"
        return f"{self.start or 'the beginning'} to {self.end or 'today'} (UTC, inclusive)"


@dataclass(frozen=True)
class EventEntry:
    """A custody event shown in the report (a discrepancy, a purge, a refusal)."""

    seq: int
    occurred_at: str
    recording_uuid: str | None
    event: str
    actor: str
    details: dict[str, Any]
    resolved: bool = False
    """For a discrepancy: a later verification of the recording succeeded."""


@dataclass(frozen=True)
class Coverage:
    """How recently the archived recordings were verified against the bucket."""

    cycle_days: int
    archived: int
    verified_within_cycle: int
    never_verified: int
    oldest_verification: datetime | None


@dataclass(frozen=True)
class Check:
    """One check behind the report's verdict: what it covered and how it came out."""

    name: str
    status: CheckStatus
    text: str
    """What was checked, for the verdict line ("chain verified (12 events)")."""


@dataclass
class AuditReport:
    """Everything the report shows (see the module docstring)."""

    generated_at: datetime
    period: Period
    tool_version: str
    database: str
    bucket: str | None
    recordings: int = 0
    without_recorded_at: int = 0
    """Recordings of the period registered without a recorded_at: their key date and
    retention start at the discovery date instead."""
    states: Counter[str] = field(default_factory=Counter)
    ledger_states: dict[str, int] = field(default_factory=dict)
    archived_bytes: int = 0
    archived_seconds: float = 0.0
    """Audio archived in the period, by the containers' own durations."""
    archived_per_day: Counter[date] = field(default_factory=Counter)
    failures: list[Recording] = field(default_factory=list)
    failure_count: int = 0
    discrepancies: list[EventEntry] = field(default_factory=list)
    purges: list[EventEntry] = field(default_factory=list)
    refusals: list[EventEntry] = field(default_factory=list)
    accesses: list[EventEntry] = field(default_factory=list)
    """Hand-overs of archived recordings' bytes to a person (``exported`` events)."""
    holds: list[Recording] = field(default_factory=list)
    retention: RetentionOverview | None = None
    coverage: Coverage | None = None
    chain: ChainReport | None = None
    checkpoints: CheckpointReport | None = None
    """None when no bucket was given (checkpoints not checked)."""
    custody_log: LoggedCheckpoint | None = None
    """The latest custody log checkpoint the ledger records."""
    in_progress: list[Recording] = field(default_factory=list)
    """Recordings claimed when the report was made (a dead worker's until its lease ends)."""
    shared_content: list[tuple[str, list[str]]] = field(default_factory=list)
    """SHA-256 digests archived under several recording ids, with the ids."""
    ambiguous_drop_files: list[dict[str, str]] = field(default_factory=list)
    """Drop files that matched no ledger row, as the period's last sweep saw them."""
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def open_discrepancies(self) -> list[EventEntry]:
        return [d for d in self.discrepancies if not d.resolved]

    @property
    def findings(self) -> list[str]:
        """One line per thing an auditor must look at (empty: all clear)."""
        out = []
        if self.chain is not None and not self.chain.ok:
            out.append(f"custody chain broken at event {self.chain.first_broken_seq}")
        if self.checkpoints is not None and not self.checkpoints.ok:
            out.append(f"{len(self.checkpoints.problems)} checkpoint(s) contradict the ledger")
        if self.custody_log is not None and not self.custody_log.signed:
            out.append(f"custody log UNSIGNED: {unsigned_log_problem(self.custody_log)}")
        if self.open_discrepancies:
            n = len(self.open_discrepancies)
            out.append(f"{n} unresolved verification discrepanc{'y' if n == 1 else 'ies'}")
        if self.failure_count:
            n = self.failure_count
            out.append(f"{n} recording{'' if n == 1 else 's'} failed, missing or in conflict")
        if self.shared_content:
            n = len(self.shared_content)
            out.append(
                f"{n} SHA-256 digest{'' if n == 1 else 's'} archived under more than one "
                "recording id"
            )
        if self.ambiguous_drop_files:
            n = len(self.ambiguous_drop_files)
            out.append(
                f"{n} SFTP drop file{'' if n == 1 else 's'} matched no ledger row "
                "(set TENIOS_SFTP_PATTERN)"
            )
        return out

    @property
    def checks(self) -> list[Check]:
        """The chain, the bucket's checkpoints and verification coverage, each saying
        whether it ran and passed: the verdict is built from these."""
        out: list[Check] = []
        if self.chain is None:
            out.append(Check("chain", "not checked", "custody chain not checked"))
        elif self.chain.ok:
            out.append(Check("chain", "passed", f"chain verified ({self.chain.events:,} events)"))
        else:
            out.append(
                Check("chain", "failed", f"chain broken at event {self.chain.first_broken_seq}")
            )
        if self.checkpoints is None:
            out.append(Check("bucket", "not checked", "bucket not checked"))
        elif self.checkpoints.ok:
            n = self.checkpoints.checked
            out.append(Check("bucket", "passed", f"{n:,} checkpoint{'' if n == 1 else 's'} agree"))
        else:
            n = len(self.checkpoints.problems)
            out.append(Check("bucket", "failed", f"{n} checkpoint(s) contradict the ledger"))
        log = self.custody_log
        if log is not None and not log.signed:
            out.append(Check("signature", "failed", "latest custody log checkpoint UNSIGNED"))
        cov = self.coverage
        if cov is None:
            out.append(Check("verification", "not checked", "verification coverage not read"))
        elif cov.archived == 0:
            out.append(Check("verification", "passed", "no archived recordings to verify"))
        else:
            share = cov.verified_within_cycle * 100 // cov.archived  # 99.9 % is not 100 %
            text = (
                f"{share} % of archived recordings verified in the last {cov.cycle_days} days"
                f" ({cov.verified_within_cycle:,} of {cov.archived:,})"
            )
            done = cov.verified_within_cycle >= cov.archived
            out.append(Check("verification", "passed" if done else "incomplete", text))
        return out

    @property
    def all_passed(self) -> bool:
        """Every check ran and passed and nothing needs attention: the only case the
        report may call "all checks passed"."""
        return not self.findings and all(c.status == "passed" for c in self.checks)

    @property
    def verdict(self) -> str:
        """What was checked and what was not, in one line."""
        return "; ".join(c.text for c in self.checks)

    def summary(self) -> dict[str, Any]:
        """The report's figures as JSON-ready data (``summary.json``)."""
        retention = self.retention
        coverage = self.coverage
        return {
            "generated_at": format_time(self.generated_at),
            "period": {
                "from": self.period.start.isoformat() if self.period.start else None,
                "to": self.period.end.isoformat() if self.period.end else None,
            },
            "tool_version": self.tool_version,
            "database": self.database,
            "bucket": self.bucket,
            "recordings_in_period": self.recordings,
            "recordings_in_period_without_recorded_at": self.without_recorded_at,
            "states_in_period": {s.value: self.states.get(s.value, 0) for s in State},
            "states_in_ledger": self.ledger_states,
            "archived_bytes": self.archived_bytes,
            "archived_seconds": round(self.archived_seconds, 3),
            "archived_per_day": {
                d.isoformat(): n for d, n in sorted(self.archived_per_day.items())
            },
            "failures": self.failure_count,
            "discrepancies": len(self.discrepancies),
            "open_discrepancies": len(self.open_discrepancies),
            "purged_in_period": len(self.purges),
            "purge_refusals_in_period": len(self.refusals),
            "accesses_in_period": len(self.accesses),
            "accesses_by_actor": dict(sorted(Counter(e.actor for e in self.accesses).items())),
            "legal_holds": len(self.holds),
            "retention_expired": len(retention.expired) if retention else None,
            "retention_due": len(retention.due) if retention else None,
            "retention_due_within_days": retention.within_days if retention else None,
            "verification": None
            if coverage is None
            else {
                "cycle_days": coverage.cycle_days,
                "archived": coverage.archived,
                "verified_within_cycle": coverage.verified_within_cycle,
                "never_verified": coverage.never_verified,
                "oldest_verification": format_time(coverage.oldest_verification)
                if coverage.oldest_verification
                else None,
            },
            "chain": None
            if self.chain is None
            else {
                "ok": self.chain.ok,
                "events": self.chain.events,
                "head_seq": self.chain.head_seq,
                "head_hash": self.chain.head_hash,
                "first_broken_seq": self.chain.first_broken_seq,
                "problem": self.chain.problem,
                "queued": self.chain.queued,
            },
            "checkpoints": None
            if self.checkpoints is None
            else {
                "ok": self.checkpoints.ok,
                "checked": self.checkpoints.checked,
                "newest_key": self.checkpoints.newest.key if self.checkpoints.newest else None,
                "newest_seq": self.checkpoints.newest.last_seq if self.checkpoints.newest else None,
                "problems": [p.message for p in self.checkpoints.problems],
            },
            "custody_log": None
            if self.custody_log is None
            else {
                "latest_checkpoint": self.custody_log.key,
                "tree_size": self.custody_log.size,
                "signed": self.custody_log.signed,
            },
            "content_under_several_ids": [
                {"sha256": digest, "recording_uuids": ids} for digest, ids in self.shared_content
            ],
            "drop_files_matching_no_row": self.ambiguous_drop_files,
            "in_progress": [
                {
                    "recording_uuid": r.recording_uuid,
                    "claimed_by": r.lease_owner,
                    "lease_expires_at": format_time(r.lease_expires_at)
                    if r.lease_expires_at
                    else None,
                }
                for r in self.in_progress
            ],
            "findings": self.findings,
            "checks": [{"name": c.name, "status": c.status, "text": c.text} for c in self.checks],
            "all_checks_passed": self.all_passed,
            "verdict": self.verdict,
        }
