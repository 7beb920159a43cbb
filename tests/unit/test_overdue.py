"""When the backlog notification fires (tenios_io.ops.monitoring.overdue)."""

from __future__ import annotations

from datetime import UTC, datetime

from tenios_io.ledger.stats import LedgerStats
from tenios_io.ops.monitoring import overdue


def _stats(due: int, oldest: float) -> LedgerStats:
    return LedgerStats(
        at=datetime(2026, 1, 1, tzinfo=UTC),
        due=due,
        oldest_due_seconds=oldest,
        in_progress=0,
        expired_leases=0,
        last_24h={},
    )


def test_overdue_only_past_the_threshold_and_only_with_something_due() -> None:
    assert overdue(_stats(3, 2 * 3600.0 + 1), hours=2)
    assert not overdue(_stats(3, 2 * 3600.0), hours=2)
    assert not overdue(_stats(0, 0.0), hours=0.001)
    assert overdue(_stats(1, 5.0), hours=0.001)
