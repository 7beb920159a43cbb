from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tenios_io.exceptions import (
    AccessDenied,
    ApiUnavailable,
    ArchiveConflict,
    LedgerUnavailable,
    RecordingNotFound,
    StaleLease,
    VerificationFailed,
)
from tenios_io.run.retry import Decision, RetryPolicy

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, backoff_base=5, backoff_max=60, rng=random.Random(1))


def test_backoff_grows_is_capped_and_jittered() -> None:
    p = policy()
    delays = [p.delay(n) for n in range(1, 8)]
    assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10
    assert all(30 <= d <= 60 for d in delays[4:])
    assert len({round(d, 6) for d in delays}) == len(delays)


@pytest.mark.parametrize(
    "exc", [ApiUnavailable("503"), LedgerUnavailable("db"), RuntimeError("bug")]
)
def test_transient_and_unexpected_errors_retry_until_attempts_run_out(exc: Exception) -> None:
    p = policy()
    assert p.judge(exc, attempts=1, discovered_at=NOW, now=NOW).decision is Decision.RETRY
    last = p.judge(exc, attempts=3, discovered_at=NOW, now=NOW)
    assert last.decision is Decision.FAILED and "gave up after 3 attempts" in last.reason


def test_not_found_is_not_ready_within_grace_then_missing() -> None:
    p = policy()
    exc = RecordingNotFound("404", recording_uuid="r")
    early = p.judge(exc, attempts=9, discovered_at=NOW - timedelta(hours=47), now=NOW)
    assert early.decision is Decision.RETRY and "not ready" in early.reason
    late = p.judge(exc, attempts=1, discovered_at=NOW - timedelta(hours=49), now=NOW)
    assert late.decision is Decision.MISSING and "48 h" in late.reason


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        (ArchiveConflict("other bytes"), Decision.CONFLICT),
        (AccessDenied("403"), Decision.FAILED),
        (VerificationFailed("read-back"), Decision.FAILED),
        (StaleLease("gone"), Decision.LOST_LEASE),
    ],
)
def test_terminal_errors(exc: Exception, decision: Decision) -> None:
    assert policy().judge(exc, attempts=1, discovered_at=NOW, now=NOW).decision is decision
