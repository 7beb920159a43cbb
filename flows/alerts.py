"""Events a run emits for the operator's automations (`tenios-archive prefect apply`
creates them): the backlog is overdue at the end of a run."""

from __future__ import annotations

from prefect.events import emit_event

from tenios_io.ledger.stats import LedgerStats
from tenios_io.ops.monitoring import LEDGER_RESOURCE, OVERDUE_EVENT, age, overdue


def report_backlog(stats: LedgerStats, *, alert_hours: float) -> bool:
    """Emit ``tenios-archive.backlog.overdue`` (with the stats as payload) when the most
    overdue recording has waited longer than ``alert_hours``; whether it was emitted."""
    if not overdue(stats, alert_hours):
        return False
    emit_event(
        event=OVERDUE_EVENT,
        resource={"prefect.resource.id": LEDGER_RESOURCE, "prefect.resource.name": "ledger"},
        payload={
            **stats.as_json(),
            "oldest_due": age(stats.oldest_due_seconds),
            "alert_hours": alert_hours,
        },
    )
    return True
