"""The report page's pieces without a database: the chart, escaping, periods, the summary."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tenios_io.audit import (
    AuditReport,
    AuditSummary,
    CheckpointProblem,
    CheckpointReport,
    Period,
    ReconcileReport,
    checkpoint_key,
    checkpoint_prefix,
)
from tenios_io.audit.report_data import Coverage
from tenios_io.audit.report_html import archived_chart, render_html
from tenios_io.audit.verify import Difference, VerifyReport, VerifyResult, VerifyStatus
from tenios_io.ledger import ChainReport
from tenios_io.store import parse_object_key

D = date(2026, 3, 2)


def bars(svg: str) -> list[str]:
    return re.findall(r'<rect class="bar" data-day="([0-9-]+)"', svg)


def test_one_bar_per_day_with_archivals_on_a_time_axis() -> None:
    per_day = {D: 5, date(2026, 3, 4): 1, date(2026, 3, 9): 0, date(2026, 3, 30): 12}
    svg = archived_chart(per_day)
    assert bars(svg) == ["2026-03-02", "2026-03-04", "2026-03-30"]
    assert svg.count("<rect") == 3
    assert "<title>2026-03-30: 12 archived</title>" in svg
    xs = [float(x) for x in re.findall(r'<rect class="bar"[^>]* x="([0-9.]+)"', svg)]
    assert xs == sorted(xs) and xs[2] - xs[1] > 10 * (xs[1] - xs[0])  # gaps are days


def test_chart_without_archivals_says_so() -> None:
    assert "No recordings were archived" in archived_chart({})
    assert "No recordings were archived" in archived_chart({D: 0})


def test_period_bounds_and_text() -> None:
    period = Period(D, date(2026, 3, 8))
    assert period.start_at == datetime(2026, 3, 2, tzinfo=UTC)
    assert period.end_before == datetime(2026, 3, 9, tzinfo=UTC)
    assert period.contains(datetime(2026, 3, 8, 23, 59, tzinfo=UTC))
    assert not period.contains(datetime(2026, 3, 9, tzinfo=UTC))
    assert str(Period()) == "all time" and Period().contains(datetime(1999, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2026, 3, 8), D)


def test_everything_shown_is_escaped() -> None:
    report = AuditReport(
        generated_at=datetime(2026, 3, 9, tzinfo=UTC),
        period=Period(),
        tool_version="1.0",
        database="sqlite",
        bucket="<b>bucket</b>",
        chain=ChainReport(False, 3, 3, "f" * 64, 4, "event 4 <script>alert(1)</script>"),
        checkpoints=CheckpointReport(
            1, None, (CheckpointProblem("k&<>", "rewritten", 'the "ledger" <lies>'),)
        ),
        files={"html": Path("report.html"), "csv": Path("recordings.csv")},
    )
    page = render_html(report)
    assert "<script" not in page and "<b>bucket" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "k&amp;&lt;&gt;" in page
    assert "custody chain broken at event 4" in page and "Needs attention" in page


def test_checkpoint_keys_sit_outside_the_recordings_layout() -> None:
    assert checkpoint_prefix("recordings") == "recordings/_custody/checkpoints/"
    assert checkpoint_prefix("") == "_custody/checkpoints/"
    key = checkpoint_key("recordings", 42)
    assert key == "recordings/_custody/checkpoints/00000000000000000042.json"
    assert parse_object_key("recordings", key) is None
    assert checkpoint_key("a", 9) < checkpoint_key("a", 10)  # keys sort by sequence number


def test_summary_table_markdown_and_verdict() -> None:
    chain = ChainReport(True, 10, 10, "a" * 64)
    verify = VerifyReport(deep=False, checked=2, verified=1)
    verify.discrepancies.append(
        VerifyResult(
            "8101fcb3-3843-4db3-9829-f7ab586625fe",
            VerifyStatus.DISCREPANCY,
            "k",
            "v",
            False,
            (Difference("size", 3, 4),),
        )
    )
    summary = AuditSummary(chain, CheckpointReport(1, None), verify=verify)
    assert not summary.ok
    assert [row["check"] for row in summary.table()] == ["custody chain", "checkpoints", "verify"]
    markdown = summary.markdown()
    assert (
        "Problems found." in markdown
        and "| `8101fcb3-3843-4db3-9829-f7ab586625fe` | size |" in markdown
    )
    assert summary.problems() == [
        "discrepancy 8101fcb3-3843-4db3-9829-f7ab586625fe: size: expected 3, found 4"
    ]
    # Only the chain ran: no problem, but not "All checks passed" (issue 12 item 3; this
    # asserted the green verdict before).
    chain_only = AuditSummary(chain)
    assert chain_only.ok and not chain_only.all_passed
    assert "All checks passed." not in chain_only.markdown()
    assert "not checked: checkpoints, verify, reconcile" in chain_only.markdown()
    everything = AuditSummary(
        chain,
        CheckpointReport(1, None),
        verify=VerifyReport(deep=False),
        reconcile=ReconcileReport(),
    )
    assert everything.all_passed and "All checks passed." in everything.markdown()


def test_the_package_exports_what_it_lists() -> None:
    import tenios_io.audit as audit

    assert len(set(audit.__all__)) == len(audit.__all__)
    assert all(hasattr(audit, name) for name in audit.__all__)
    assert callable(audit.write_checkpoint)


def _report(**fields: object) -> AuditReport:
    report = AuditReport(
        generated_at=datetime(2026, 12, 3, tzinfo=UTC),
        period=Period(),
        tool_version="t",
        database="sqlite",
        bucket=None,
    )
    for name, value in fields.items():
        setattr(report, name, value)
    return report


def test_the_verdict_is_green_only_when_every_check_ran_and_passed() -> None:
    """Issue 12 item 3: 0 of 200,000 verified and no bucket is not "All checks passed"."""
    chain = ChainReport(True, 12, 12, "h" * 64)
    skipped = _report(chain=chain, coverage=Coverage(30, 200_000, 0, 200_000, None))
    assert not skipped.all_passed and skipped.findings == []
    assert skipped.verdict == (
        "chain verified (12 events); bucket not checked; "
        "0 % of archived recordings verified in the last 30 days (0 of 200,000)"
    )
    html = render_html(skipped)
    assert "All checks passed" not in html and "Not everything was checked" in html
    assert 'class="verdict ok"' not in html

    almost = _report(
        chain=chain,
        checkpoints=CheckpointReport(3, None),
        coverage=Coverage(30, 1000, 999, 0, None),
    )
    assert not almost.all_passed and "99 % of archived" in almost.verdict

    done = _report(
        chain=chain,
        checkpoints=CheckpointReport(3, None),
        coverage=Coverage(30, 1000, 1000, 0, None),
    )
    assert done.all_passed and done.summary()["all_checks_passed"]
    assert "All checks passed: chain verified (12 events); 3 checkpoints agree" in render_html(done)
