"""The ledger stats as an operator reads them: aligned lines for the terminal and
markdown for the Prefect artifact a flow run ends with.  (The Prometheus form lives in
:mod:`tenios_io.ops.metrics`, so only the commands that export metrics import prometheus_client.)
"""

from __future__ import annotations

from tenios_io.ledger.stats import LedgerStats


def age(seconds: float) -> str:
    """A duration in the largest whole units that fit: 0s, 42s, 7m 3s, 5h 12m, 3d 4h."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def rows(stats: LedgerStats) -> list[tuple[str, str]]:
    """(label, value) pairs in the order an operator scans them."""
    recent = stats.last_24h
    hourly = sorted(stats.archived_per_hour.items())
    last_hours = ", ".join(f"{h:%H}h {n:,}" for h, n in hourly[-6:]) or "none"
    return [
        ("due now", f"{stats.due:,}"),
        ("oldest due waiting", age(stats.oldest_due_seconds)),
        ("in progress", f"{stats.in_progress:,} ({stats.expired_leases:,} with expired leases)"),
        ("archived, last 24 h", f"{recent.get('archived', 0):,}"),
        ("failed, last 24 h", f"{recent.get('failed', 0):,}"),
        ("missing, last 24 h", f"{recent.get('missing', 0):,}"),
        ("conflict, last 24 h", f"{recent.get('conflict', 0):,}"),
        ("archived per hour (UTC)", last_hours),
        ("custody events queued", f"{stats.custody_queued:,}"),
    ]


def markdown(stats: LedgerStats) -> str:
    """A markdown table (the Prefect artifact)."""
    lines = [
        f"### Ledger at {stats.at:%Y-%m-%d %H:%M:%S} UTC",
        "",
        "| | |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {value} |" for label, value in rows(stats)]
    return "\n".join(lines) + "\n"


OVERDUE_EVENT = "tenios-archive.backlog.overdue"
LEDGER_RESOURCE = "tenios-archive.ledger"


def overdue(stats: LedgerStats, hours: float) -> bool:
    """Whether the most overdue recording has waited longer than ``hours``: the
    condition the backlog notification fires on (TENIOS_ALERT_OLDEST_DUE_HOURS)."""
    return stats.due > 0 and stats.oldest_due_seconds > hours * 3600.0
