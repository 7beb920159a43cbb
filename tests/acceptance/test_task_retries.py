"""Prefect retries a batch task only when its error is Transient (two levels
of retry; the ledger handles single recordings, Prefect a batch that crashed whole)."""

from __future__ import annotations

import pytest
from prefect import flow, task

from flows.archiving import RETRIED_TASK
from tenios_io.exceptions import AccessDenied, LedgerUnavailable, TeniosArchiveError

OPTIONS = {**RETRIED_TASK, "retry_delay_seconds": 0}


@pytest.mark.parametrize(
    ("error", "calls"),
    [(LedgerUnavailable("database restarting"), 3), (AccessDenied("403"), 1)],
)
def test_only_transient_errors_are_retried(
    prefect_api_url: str, error: TeniosArchiveError, calls: int
) -> None:
    attempts: list[int] = []

    @task(name="always-fails", **OPTIONS)
    def always_fails() -> None:
        attempts.append(1)
        raise error

    @flow(name="retry-probe")
    def probe() -> None:
        always_fails()

    with pytest.raises(type(error)):
        probe()
    assert len(attempts) == calls  # retries=2: three tries for transient, one otherwise
