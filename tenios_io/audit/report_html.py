"""The audit report as one self-contained HTML page: inline CSS and SVG, no script, no assets.

Everything shown is escaped.  The chart of archivals per day is an SVG with one
``<rect class="bar" data-day="YYYY-MM-DD" data-count="N">`` per day that has
archivals, placed on a time axis (days without archivals are gaps); each bar
carries a ``<title>`` so hovering shows its figures without any script.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from tenios_io.audit.report_data import MAX_ROWS, AuditReport, EventEntry
from tenios_io.custody.chain import format_time
from tenios_io.ledger import Recording, State
from tenios_io.recording.validation import describe_duration

STATE_MEANING = {
    State.PENDING: "registered, waiting to be fetched (or to be retried)",
    State.IN_PROGRESS: "claimed by a worker: being archived, or left by a worker that died "
    "(listed below with when the lease ends; then the next run takes it over)",
    State.ARCHIVED: "in the bucket, verified by read-back, under retention",
    State.MISSING: "the source never delivered it within the grace period",
    State.FAILED: "gave up after errors; an operator can requeue it",
    State.CONFLICT: "the bucket already held other bytes under its key (never overwritten)",
    State.PURGED: "deleted after its retention ended, with evidence in the custody chain",
}

_CSS = """
:root { --ok: #1b7f3b; --bad: #b42318; --warn: #a15c07; --ink: #1d2433; --muted: #5b6475;
        --line: #d9dde5; --soft: #f4f6f9; --bar: #2f6fb3; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1080px; margin: 0 auto; padding: 32px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 40px 0 10px; padding-bottom: 6px;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; }
p { margin: 6px 0 10px; }
.meta { color: var(--muted); margin: 0 0 20px; }
.meta span { margin-right: 18px; white-space: nowrap; }
.verdict { border-radius: 8px; padding: 14px 18px; margin: 18px 0 8px; font-weight: 600; }
.verdict.ok { background: #e7f5ec; color: var(--ok); border: 1px solid #b7e0c4; }
.verdict.bad { background: #fdecea; color: var(--bad); border: 1px solid #f5c2bd; }
.verdict.partial { background: #fff8e1; color: #7a5a00; border: 1px solid #f0d98c; }
.verdict .checked { margin: 8px 0 0 0; font-weight: 500; }
.verdict ul { margin: 6px 0 0 0; padding-left: 20px; font-weight: 500; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
         gap: 10px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
        background: var(--soft); }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
               letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 650; }
.card .value.ok { color: var(--ok); }
.card .value.bad { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 13.5px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       font-size: 12.5px; word-break: break-all; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; }
.badge.ok { background: #e7f5ec; color: var(--ok); }
.badge.bad { background: #fdecea; color: var(--bad); }
.badge.warn { background: #fff4e0; color: var(--warn); }
.note { color: var(--muted); font-size: 13px; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .bar { fill: var(--bar); }
.chart .axis { stroke: #9aa3b2; stroke-width: 1; }
.chart .grid { stroke: var(--line); stroke-width: 1; stroke-dasharray: 3 3; }
.chart text { font-size: 11px; fill: var(--muted); }
.chart text.count { fill: var(--ink); font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px;
         border-top: 1px solid var(--line); padding-top: 12px; }
@media print {
  main { padding: 0; }
  h2 { break-after: avoid; }
  table, .chart { break-inside: avoid; }
}
"""


def render_html(report: AuditReport) -> str:
    """The whole report page."""
    title = "Compliance report — TENIOS call recording archive"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — {_e(str(report.period))}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        _meta(report),
        _verdict(report),
        _cards(report),
        _states(report),
        _chart_section(report),
        _verification(report),
        _failures(report),
        _claimed(report),
        _identities(report),
        _retention(report),
        _deletions(report),
        _accesses(report),
        _chain(report),
        _footer(report),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


# -- sections --------------------------------------------------------------------------------


def _meta(report: AuditReport) -> str:
    items = [
        ("Period", str(report.period)),
        ("Generated", _time(report.generated_at)),
        ("Bucket", report.bucket or "not checked"),
        ("Ledger", report.database),
        ("Tool", f"tenios-archive {report.tool_version}"),
    ]
    spans = " ".join(f"<span><strong>{_e(k)}:</strong> {_e(v)}</span>" for k, v in items)
    return f'<p class="meta">{spans}</p>'


def _verdict(report: AuditReport) -> str:
    """Green only when every check ran and passed; otherwise it says what was not
    checked, or what needs attention (issue 12: a green banner over checks that never
    ran misleads the reader)."""
    checked = _e(report.verdict)
    findings = report.findings
    if findings:
        items = "".join(f"<li>{_e(f)}</li>" for f in findings)
        return (
            f'<div class="verdict bad">Needs attention:<ul>{items}</ul>'
            f'<p class="checked">Checked: {checked}.</p></div>'
        )
    if report.all_passed:
        return f'<div class="verdict ok">All checks passed: {checked}.</div>'
    return (
        '<div class="verdict partial">Not everything was checked, and no problem was found '
        f"in what was: {checked}.</div>"
    )


def _cards(report: AuditReport) -> str:
    archived_in_period = sum(report.archived_per_day.values())
    chain_ok = report.chain is not None and report.chain.ok
    cp = report.checkpoints
    cards = [
        ("Recordings in period", f"{report.recordings:,}", ""),
        ("Archived in period", f"{archived_in_period:,}", ""),
        ("Archived data", _bytes(report.archived_bytes), ""),
        ("Archived audio", describe_duration(report.archived_seconds) or "0 s", ""),
        (
            "Failed / missing / conflict",
            f"{report.failure_count:,}",
            "bad" if report.failure_count else "ok",
        ),
        (
            "Open discrepancies",
            f"{len(report.open_discrepancies):,}",
            "bad" if report.open_discrepancies else "ok",
        ),
        ("Custody chain", "OK" if chain_ok else "BROKEN", "ok" if chain_ok else "bad"),
        (
            "Checkpoints",
            "not checked" if cp is None else ("OK" if cp.ok else f"{len(cp.problems)} problem(s)"),
            "" if cp is None else ("ok" if cp.ok else "bad"),
        ),
    ]
    body = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value {cls}">{_e(value)}</div></div>'
        for label, value, cls in cards
    )
    return f'<div class="cards">{body}</div>'


def _states(report: AuditReport) -> str:
    rows = [
        [
            f"<strong>{_e(state.value)}</strong>",
            _num(report.states.get(state.value, 0)),
            _num(report.ledger_states.get(state.value, 0)),
            _e(STATE_MEANING[state]),
        ]
        for state in State
    ]
    return (
        "<h2>Recordings by state</h2>"
        "<p>Where every recording is now: those registered or archived in the period, and the "
        "whole ledger.</p>"
        + _table(["State", "In period", "Whole ledger", "Meaning"], rows, numeric={1, 2})
        + f"<p>{_num(report.without_recorded_at)} of {_num(report.recordings)} recordings in "
        "the period had no <code>recorded_at</code>: their S3 key date and retention period "
        "start at the date they were registered (each <code>registered</code> event says "
        "which date was used).</p>"
    )


def _chart_section(report: AuditReport) -> str:
    chart = archived_chart(report.archived_per_day, report.period.start, report.period.end)
    return (
        "<h2>Archived per day</h2>"
        "<p>Recordings archived (uploaded, verified by read-back and recorded) on each UTC day "
        "of the period; one bar per day with archivals, hover a bar for its figures.</p>"
        f'<div class="chart">{chart}</div>'
    )


def archived_chart(
    per_day: dict[date, int], start: date | None = None, end: date | None = None
) -> str:
    """The inline SVG bar chart: one ``rect.bar[data-day]`` per day with archivals."""
    days = sorted(d for d, n in per_day.items() if n > 0)
    if not days:
        return '<p class="note">No recordings were archived in this period.</p>'
    first, last = days[0], days[-1]
    if start is not None and end is not None and (end - start).days <= 400:
        first, last = min(first, start), max(last, end)
    span = (last - first).days + 1
    width, height, left, bottom, top = 960, 220, 44, 28, 20
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / span
    bar_w = min(64.0, max(1.0, slot * 0.8))
    labelled = span <= 62  # room for the count above each bar
    peak = max(per_day[d] for d in days)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Recordings archived per day, {first} to {last}">',
        f'<line class="grid" x1="{left}" y1="{top}" x2="{width - 8}" y2="{top}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>',
    ]
    for day in days:
        count = per_day[day]
        h = max(1.0, plot_h * count / peak)
        x = left + (day - first).days * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        out.append(
            f'<rect class="bar" data-day="{day.isoformat()}" data-count="{count}" '
            f'x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{h:.2f}">'
            f"<title>{day.isoformat()}: {count:,} archived</title></rect>"
        )
        if labelled:
            out.append(
                f'<text class="count" x="{x + bar_w / 2:.2f}" y="{y - 4:.2f}" '
                f'text-anchor="middle">{count:,}</text>'
            )
    base = top + plot_h
    out.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}"/>')
    for day in _tick_days(first, last):
        x = left + (day - first).days * slot + slot / 2
        out.append(
            f'<text x="{x:.2f}" y="{base + 17}" text-anchor="middle">{day.isoformat()}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _tick_days(first: date, last: date) -> list[date]:
    span = (last - first).days
    if span == 0:
        return [first]
    step = max(1, -(-span // 6))
    ticks = [first + timedelta(days=i) for i in range(0, span + 1, step)]
    if (last - ticks[-1]).days * 2 >= step:
        ticks.append(last)
    return ticks


def _verification(report: AuditReport) -> str:
    cov = report.coverage
    parts = ["<h2>Verification against the bucket</h2>"]
    if cov is not None:
        parts.append(
            "<p><code>tenios-archive audit verify</code> re-reads each archived recording's "
            "object in S3 (size, SHA-256, retention, legal hold, custody metadata), and records "
            "the verdict in the custody chain. "
            f"The rolling check covers the archive every {cov.cycle_days} days.</p>"
            '<dl class="facts">'
            f"<dt>Archived recordings</dt><dd>{cov.archived:,}</dd>"
            f"<dt>Verified in the last {cov.cycle_days} days</dt><dd>{cov.verified_within_cycle:,}"
            f" ({_percent(cov.verified_within_cycle, cov.archived)})</dd>"
            f"<dt>Never verified since archiving</dt><dd>{cov.never_verified:,}</dd>"
            f"<dt>Oldest verification</dt><dd>{_e(_time(cov.oldest_verification))}</dd></dl>"
        )
    parts.append("<h3>Discrepancies found in the period</h3>")
    if not report.discrepancies:
        parts.append(
            '<p class="note">None: every verification in the period matched the ledger.</p>'
        )
        return "".join(parts)
    rows = []
    for entry in report.discrepancies[:MAX_ROWS]:
        diffs = entry.details.get("differences") or []
        what = "<br>".join(
            f"<strong>{_e(d.get('field'))}</strong>: expected <code>{_e(d.get('expected'))}</code>,"
            f" found <code>{_e(d.get('found'))}</code>"
            for d in diffs
            if isinstance(d, dict)
        )
        status = (
            '<span class="badge ok">resolved</span>'
            if entry.resolved
            else '<span class="badge bad">open</span>'
        )
        rows.append(
            [
                _e(_time(entry.occurred_at)),
                f"<code>{_e(entry.recording_uuid)}</code>",
                f"<code>{_e(entry.details.get('key'))}</code>",
                what,
                status,
            ]
        )
    parts.append(_table(["When", "Recording", "S3 key", "What differed", "Status"], rows))
    parts.append(_more(len(report.discrepancies)))
    return "".join(parts)


def _failures(report: AuditReport) -> str:
    parts = [
        "<h2>Failures</h2>",
        "<p>Recordings of the period that are not archived because of an error: failed, "
        "missing (never delivered) or conflict (other bytes already under the key).</p>",
    ]
    if not report.failures:
        parts.append('<p class="note">None.</p>')
        return "".join(parts)
    rows = [
        [
            f"<code>{_e(r.recording_uuid)}</code>",
            f'<span class="badge bad">{_e(r.state.value)}</span>',
            _num(r.attempts),
            _e(_time(r.discovered_at)),
            _e(r.last_error or ""),
        ]
        for r in report.failures
    ]
    parts.append(
        _table(["Recording", "State", "Attempts", "Registered", "Last error"], rows, numeric={2})
    )
    parts.append(_more(report.failure_count))
    return "".join(parts)


def _claimed(report: AuditReport) -> str:
    """In-progress rows with their lease: a killed worker's stay here until it ends."""
    if not report.in_progress:
        return ""
    rows = []
    for rec in report.in_progress:
        ends = rec.lease_expires_at
        left = "" if ends is None else _duration((ends - report.generated_at).total_seconds())
        rows.append(
            [
                f"<code>{_e(rec.recording_uuid)}</code>",
                _e(rec.lease_owner or ""),
                _e(_time(ends)),
                _e(left),
            ]
        )
    return (
        "<h2>Claimed when the report was made</h2>"
        "<p>Recordings a worker had claimed. If no run was active, that worker died: the "
        "claim is taken over by the next run once the lease ends, without losing an "
        "attempt.</p>" + _table(["Recording", "Claimed by", "Lease ends", "Ends in"], rows)
    )


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "ended"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _identities(report: AuditReport) -> str:
    """One recording, one id: content under several ids, drop files matching no row."""
    if not report.shared_content and not report.ambiguous_drop_files:
        return ""
    parts = ["<h2>Recording identity</h2>"]
    if report.shared_content:
        parts.append(
            "<p>The same bytes (one SHA-256) are archived under more than one recording id: "
            "one recording archived twice, e.g. once under its call's id.</p>"
        )
        rows = [
            [f"<code>{_e(digest)}</code>", "<br>".join(f"<code>{_e(u)}</code>" for u in ids)]
            for digest, ids in report.shared_content[:MAX_ROWS]
        ]
        parts.append(_table(["SHA-256", "Recording ids"], rows))
        parts.append(_more(len(report.shared_content)))
    if report.ambiguous_drop_files:
        parts.append(
            "<p>SFTP drop files whose names matched no ledger row (several UUIDs, none a "
            "known recording): left alone, not archived. Set TENIOS_SFTP_PATTERN.</p>"
        )
        rows = [
            [f"<code>{_e(f['path'])}</code>", _e(f["why"])]
            for f in report.ambiguous_drop_files[:MAX_ROWS]
        ]
        parts.append(_table(["File", "Why"], rows))
        parts.append(_more(len(report.ambiguous_drop_files)))
    return "".join(parts)


def _retention(report: AuditReport) -> str:
    ret = report.retention
    parts = ["<h2>Retention and legal holds</h2>"]
    if ret is not None:
        parts.append(
            f"<p>As of {_e(_time(ret.now))}: {_count(len(ret.expired), 'archived recording')} "
            "passed the retention date (purge candidates unless on legal hold); "
            f"{_count(len(ret.due), 'more')} within {ret.within_days} days.</p>"
        )
        parts.append("<h3>Retention ended, not yet purged</h3>")
        parts.append(_retention_table(ret.expired))
        parts.append(f"<h3>Retention ending within {ret.within_days} days</h3>")
        parts.append(_retention_table(ret.due))
    parts.append("<h3>On legal hold</h3>")
    if not report.holds:
        parts.append('<p class="note">No recording is on legal hold.</p>')
    else:
        rows = [
            [
                f"<code>{_e(r.recording_uuid)}</code>",
                _e(r.state.value),
                f"<code>{_e(r.s3_key)}</code>",
                _e(_time(r.retain_until)),
            ]
            for r in report.holds[:MAX_ROWS]
        ]
        parts.append(_table(["Recording", "State", "S3 key", "Retain until"], rows))
        parts.append(_more(len(report.holds)))
    return "".join(parts)


def _retention_table(recordings: Sequence[Recording]) -> str:
    if not recordings:
        return '<p class="note">None.</p>'
    rows = [
        [
            f"<code>{_e(r.recording_uuid)}</code>",
            _e(_time(r.retain_until)),
            _e(r.retention_mode or "none"),
            '<span class="badge warn">legal hold</span>' if r.legal_hold else "",
            f"<code>{_e(r.s3_key)}</code>",
        ]
        for r in recordings[:MAX_ROWS]
    ]
    return _table(["Recording", "Retain until", "Mode", "Hold", "S3 key"], rows) + _more(
        len(recordings)
    )


def _deletions(report: AuditReport) -> str:
    parts = [
        "<h2>Deletions</h2>",
        "<p>Every purge is a custody event recording what was deleted (key, version, SHA-256, "
        "size), when, by whom and why; refused purges are recorded with the reason.</p>",
        "<h3>Purged in the period</h3>",
    ]
    if not report.purges:
        parts.append('<p class="note">Nothing was purged in the period.</p>')
    else:
        rows = [_purge_row(e) for e in report.purges[:MAX_ROWS]]
        parts.append(
            _table(
                ["When", "Recording", "S3 key / version", "SHA-256", "Size", "By", "Reason"],
                rows,
                numeric={4},
            )
        )
        parts.append(_more(len(report.purges)))
    parts.append("<h3>Purges refused in the period</h3>")
    if not report.refusals:
        parts.append('<p class="note">None.</p>')
    else:
        rows = [
            [
                _e(_time(e.occurred_at)),
                f"<code>{_e(e.recording_uuid)}</code>",
                _e(e.details.get("refused_because")),
                _e(e.actor),
            ]
            for e in report.refusals[:MAX_ROWS]
        ]
        parts.append(_table(["When", "Recording", "Refused because", "By"], rows))
        parts.append(_more(len(report.refusals)))
    return "".join(parts)


def _accesses(report: AuditReport) -> str:
    parts = [
        "<h2>Access to recordings</h2>",
        "<p>Every copy of an archived recording handed to a person (an evidence package, "
        "<code>api retrieve</code>) is a custody event written before the bytes left: who, "
        "why, and what.</p>",
    ]
    if not report.accesses:
        parts.append('<p class="note">No recording was handed out in the period.</p>')
        return "".join(parts)
    by_actor = Counter(e.actor for e in report.accesses)
    parts.append("<h3>By whom</h3>")
    parts.append(
        _table(
            ["By", "Copies"],
            [[_e(actor), _num(n)] for actor, n in sorted(by_actor.items())],
            numeric={1},
        )
    )
    parts.append("<h3>Per recording</h3>")
    rows = [
        [
            _e(_time(e.occurred_at)),
            f"<code>{_e(e.recording_uuid)}</code>",
            _e(e.actor),
            _e(e.details.get("reason")),
            _e(e.details.get("handed_out")),
        ]
        for e in report.accesses[:MAX_ROWS]
    ]
    parts.append(_table(["When", "Recording", "By", "Reason", "Handed out as"], rows))
    parts.append(_more(len(report.accesses)))
    return "".join(parts)


def _purge_row(entry: EventEntry) -> list[str]:
    d = entry.details
    size = d.get("size")
    return [
        _e(_time(d.get("deleted_at") or entry.occurred_at)),
        f"<code>{_e(entry.recording_uuid)}</code>",
        f'<code>{_e(d.get("key"))}</code><br><span class="note">version '
        f"<code>{_e(d.get('version_id') or 'null')}</code></span>",
        f"<code>{_e(d.get('sha256'))}</code>",
        _num(size) if isinstance(size, int) else "",
        _e(d.get("by") or entry.actor),
        _e(d.get("reason")),
    ]


def _chain(report: AuditReport) -> str:
    parts = [
        "<h2>Custody chain and checkpoints</h2>",
        "<p>Every change to a recording is a custody event whose hash covers the previous "
        "event's hash, so editing, deleting or reordering any event breaks the chain. "
        "Checkpoints of the chain head are written into the bucket under Object Lock, so "
        "truncating or re-hashing the database is detected too.</p>",
    ]
    facts: list[tuple[str, str]] = []
    chain = report.chain
    if chain is not None:
        facts += [
            ("Chain", _badge(chain.ok, "verifies end to end", "BROKEN")),
            ("Events verified", f"{chain.events:,}"),
            ("Head", f"event {chain.head_seq:,}, hash <code>{_e(chain.head_hash)}</code>"),
            (
                "Events still queued",
                f"{chain.queued:,} written but not yet integrated (not covered by this report)",
            ),
        ]
        if not chain.ok:
            facts.append(("First broken event", f"{chain.first_broken_seq}: {_e(chain.problem)}"))
    cp = report.checkpoints
    if cp is None:
        facts.append(("Checkpoints", "not checked (no bucket configured)"))
        parts.append(_facts(facts))
        return "".join(parts)
    agree = f"{cp.checked:,} checked, all agree with the ledger"
    facts.append(("Checkpoints", _badge(cp.ok, agree, f"{len(cp.problems)} problem(s)")))
    newest = cp.newest
    if newest is None:
        facts.append(("Newest checkpoint", "none written yet"))
    else:
        lock = _e(newest.lock_mode or "none")
        if newest.retain_until:
            lock += f" until {_e(_time(newest.retain_until))}"
        facts.append(
            (
                "Newest checkpoint",
                f"<code>{_e(newest.key)}</code><br>event {newest.last_seq:,}, written "
                f"{_e(_time(newest.written_at))}, Object Lock {lock}",
            )
        )
    log = report.custody_log
    facts.append(
        (
            "Custody log",
            "no checkpoint yet"
            if log is None
            else f"latest {'signed' if log.signed else 'UNSIGNED'} checkpoint "
            f"<code>{_e(log.key)}</code>, {log.size:,} events (verify from the bucket: "
            "<code>tenios-archive audit verify-bucket --key …</code>)",
        )
    )
    parts.append(_facts(facts))
    if cp.problems:
        rows = [[f"<code>{_e(p.key)}</code>", _e(p.kind), _e(p.message)] for p in cp.problems]
        parts.append(_table(["Checkpoint", "Problem", "Detail"], rows))
    return "".join(parts)


def _footer(report: AuditReport) -> str:
    files = ", ".join(
        f"<code>{_e(path.name)}</code>" for key, path in report.files.items() if key != "html"
    )
    return (
        "<footer><p><strong>How to read this report.</strong> Times are UTC. A recording is in "
        "the period when it was registered or archived in it. “Discrepancy” means the bucket "
        "no longer matched the ledger when it was checked (what was expected and what was found "
        "are listed); “resolved” means a later check matched again. The recordings of the "
        f"period are exported beside this page ({files}) with the same columns as "
        "<code>tenios-archive ledger export</code>; every figure can be re-checked against "
        "the bucket with the AWS CLI and sha256sum.</p>"
        f"<p>Generated by tenios-archive {_e(report.tool_version)} at "
        f"{_e(_time(report.generated_at))}.</p></footer>"
    )


# -- small helpers ---------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: int) -> str:
    return f"{value:,}"


def _time(moment: datetime | str | None) -> str:
    """``2026-03-02 09:30:00 UTC`` from a datetime or a stored ``…T…Z`` time."""
    if moment is None:
        return "—"
    text = moment if isinstance(moment, str) else format_time(moment)
    return text[:19].replace("T", " ") + " UTC"


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 or noun == "more" else f"{n:,} {noun}s"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _badge(ok: bool, good: str, bad: str) -> str:
    return (
        f'<span class="badge ok">{_e(good)}</span>'
        if ok
        else f'<span class="badge bad">{_e(bad)}</span>'
    )


def _facts(items: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<dl class="facts">{body}</dl>'


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: set[int] | None = None
) -> str:
    numeric = numeric or set()
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _more(total: int) -> str:
    if total <= MAX_ROWS:
        return ""
    return f'<p class="note">… and {total - MAX_ROWS:,} more (see the CSV / JSONL exports).</p>'
