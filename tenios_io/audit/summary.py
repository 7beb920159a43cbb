"""One audit run's verdicts side by side: a table and a markdown page (the flow's artifacts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenios_io.audit.reconcile import ReconcileReport
from tenios_io.audit.report_data import AuditReport
from tenios_io.audit.verify import Selection, VerifyReport
from tenios_io.ledger import ChainReport
from tenios_io.publish.checkpoints import CheckpointReport

_LIST_AT_MOST = 50


@dataclass
class AuditSummary:
    """What each check of an audit run found (None: the check was not run)."""

    chain: ChainReport
    checkpoints: CheckpointReport | None = None
    selection: Selection | None = None
    verify: VerifyReport | None = None
    reconcile: ReconcileReport | None = None
    report: AuditReport | None = None

    @property
    def ok(self) -> bool:
        """Every check that ran found nothing."""
        return (
            self.chain.ok
            and (self.checkpoints is None or self.checkpoints.ok)
            and (self.verify is None or self.verify.ok)
            and (self.reconcile is None or self.reconcile.ok)
        )

    @property
    def not_run(self) -> list[str]:
        """The checks this audit did not run (its verdict names them)."""
        checks = {
            "checkpoints": self.checkpoints,
            "verify": self.verify,
            "reconcile": self.reconcile,
        }
        return [name for name, found in checks.items() if found is None]

    @property
    def all_passed(self) -> bool:
        """Every check ran and found nothing: only then "All checks passed"."""
        return self.ok and not self.not_run

    @property
    def verdict(self) -> str:
        """One line: all passed, problems, or what was not checked."""
        if not self.ok:
            return "Problems found."
        if self.not_run:
            return f"No problems in what was checked; not checked: {', '.join(self.not_run)}."
        return "All checks passed."

    def problems(self) -> list[str]:
        """One line per problem found."""
        out: list[str] = []
        if not self.chain.ok:
            out.append(
                f"custody chain broken at event {self.chain.first_broken_seq}: {self.chain.problem}"
            )
        if self.checkpoints is not None:
            out += [p.message for p in self.checkpoints.problems]
        if self.verify is not None:
            out += [
                f"discrepancy {r.recording_uuid}: " + "; ".join(str(d) for d in r.differences)
                for r in self.verify.discrepancies
            ]
            out += [f"not verified {r.recording_uuid}: {r.error}" for r in self.verify.errors]
        if self.reconcile is not None:
            out += [
                f"{category.value}: {count:,}"
                for category, count in self.reconcile.counts().items()
                if count
            ]
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per check: ``{check, result, detail}``."""
        rows = [
            {
                "check": "custody chain",
                "result": "ok" if self.chain.ok else "BROKEN",
                "detail": f"{self.chain.events:,} events, head {self.chain.head_seq}"
                + ("" if self.chain.ok else f"; first broken event {self.chain.first_broken_seq}")
                + (f"; {self.chain.queued:,} still queued" if self.chain.queued else ""),
            }
        ]
        if self.checkpoints is not None:
            cp = self.checkpoints
            newest = f", newest at event {cp.newest.last_seq}" if cp.newest else ""
            rows.append(
                {
                    "check": "checkpoints",
                    "result": "ok" if cp.ok else "PROBLEMS",
                    "detail": f"{cp.checked} checked{newest}; {len(cp.problems)} problem(s)",
                }
            )
        if self.verify is not None:
            v = self.verify
            scope = (
                f" of {self.selection.archived:,} archived ({self.selection.mode})"
                if self.selection
                else ""
            )
            rows.append(
                {
                    "check": "verify" + (" (deep)" if v.deep else ""),
                    "result": "ok" if v.ok else "PROBLEMS",
                    "detail": f"{v.checked:,} checked{scope}: {v.verified:,} verified, "
                    f"{len(v.discrepancies):,} discrepancies, {len(v.errors):,} errors",
                }
            )
        if self.reconcile is not None:
            rc = self.reconcile
            counts = ", ".join(f"{c.value} {n:,}" for c, n in rc.counts().items())
            drop = "" if rc.drop_files is None else f", {rc.drop_files:,} drop files"
            rows.append(
                {
                    "check": "reconcile",
                    "result": "ok" if rc.ok else "PROBLEMS",
                    "detail": f"{rc.listed_keys:,} keys, {rc.archived_rows:,} archived rows{drop}; "
                    + counts,
                }
            )
        if self.report is not None:
            rows.append(
                {
                    "check": "report",
                    "result": "written",
                    "detail": str(self.report.files.get("html", "")),
                }
            )
        return rows

    def markdown(self) -> str:
        """The run's verdicts and every problem (at most 50 per list) as markdown."""
        lines = [
            "# Audit",
            "",
            f"**{self.verdict}**",
            "",
            "| check | result | detail |",
            "|---|---|---|",
        ]
        lines += [f"| {r['check']} | {r['result']} | {_cell(r['detail'])} |" for r in self.table()]
        if self.checkpoints is not None and self.checkpoints.problems:
            lines += ["", "## Checkpoint problems", ""]
            lines += [f"- {_cell(p.message)}" for p in self.checkpoints.problems[:_LIST_AT_MOST]]
        if self.verify is not None and self.verify.discrepancies:
            lines += [
                "",
                "## Discrepancies",
                "",
                "| recording | field | expected | found |",
                "|---|---|---|---|",
            ]
            for result in self.verify.discrepancies[:_LIST_AT_MOST]:
                for diff in result.differences:
                    lines.append(
                        f"| `{result.recording_uuid}` | {diff.field} | {_cell(diff.expected)} | "
                        f"{_cell(diff.found)} |"
                    )
        if self.verify is not None and self.verify.errors:
            lines += ["", "## Not verified (try again)", ""]
            lines += [
                f"- `{r.recording_uuid}`: {_cell(r.error)}"
                for r in self.verify.errors[:_LIST_AT_MOST]
            ]
        if self.reconcile is not None and not self.reconcile.ok:
            lines += ["", "## Reconciliation"]
            for category, findings in self.reconcile.findings.items():
                if not findings:
                    continue
                lines += ["", f"### {category.value} ({len(findings):,})", ""]
                lines += [
                    f"- `{f.location}` "
                    + (f"({f.recording_uuid}) " if f.recording_uuid else "")
                    + _cell(f.detail)
                    for f in findings[:_LIST_AT_MOST]
                ]
                if len(findings) > _LIST_AT_MOST:
                    lines.append(f"- … and {len(findings) - _LIST_AT_MOST:,} more")
        if self.report is not None and self.report.findings:
            lines += ["", "## Report findings", ""]
            lines += [f"- {_cell(f)}" for f in self.report.findings]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ok, whether every check ran, the verdict, the table, the problems."""
        return {
            "ok": self.ok,
            "all_checks_passed": self.all_passed,
            "verdict": self.verdict,
            "checks": self.table(),
            "problems": self.problems(),
        }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
