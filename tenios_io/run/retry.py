"""What to do after a recording's attempt failed: the one place retry decisions are made.

Retries ask one question of an error — is it Transient? (STYLE.md) — plus two
rules of this domain: a 404 soon after registration means "not ready yet"
(retry within the grace period, then ``missing``), and other bytes under the
key are a ``conflict``, never overwritten.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from tenios_io.exceptions import (
    ArchiveConflict,
    RecordingNotFound,
    StaleLease,
    TeniosArchiveError,
    is_transient,
)


class Decision(StrEnum):
    """Where a failed attempt leaves the recording."""

    RETRY = "retry"
    MISSING = "missing"
    FAILED = "failed"
    CONFLICT = "conflict"
    LOST_LEASE = "lost_lease"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    delay_seconds: float = 0.0
    reason: str = ""


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter, bounded attempts, and the not-ready grace period."""

    max_attempts: int = 10
    backoff_base: float = 5.0
    backoff_max: float = 3600.0
    not_found_grace: timedelta = timedelta(hours=48)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1``: base·2^(n-1), capped, jittered
        into its upper half so retries of a whole batch spread out but never collapse to 0."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempts - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def judge(
        self, exc: BaseException, *, attempts: int, discovered_at: datetime, now: datetime
    ) -> Verdict:
        """The verdict for ``exc`` on the recording's ``attempts``-th attempt."""
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, StaleLease):
            return Verdict(Decision.LOST_LEASE, reason=reason)
        if isinstance(exc, ArchiveConflict):
            return Verdict(Decision.CONFLICT, reason=reason)
        if isinstance(exc, RecordingNotFound):
            if now - discovered_at < self.not_found_grace:
                return Verdict(Decision.RETRY, self.delay(attempts), f"not ready yet (404): {exc}")
            hours = self.not_found_grace.total_seconds() / 3600
            return Verdict(
                Decision.MISSING, reason=f"still 404 {hours:g} h after registration: {exc}"
            )
        # Errors that are not ours (a bug, an untranslated vendor error) are retried like
        # transient ones, so one surprise cannot fail a whole night; attempts bound them.
        if is_transient(exc) or not isinstance(exc, TeniosArchiveError):
            if attempts >= self.max_attempts:
                return Verdict(
                    Decision.FAILED, reason=f"gave up after {attempts} attempts: {reason}"
                )
            return Verdict(Decision.RETRY, self.delay(attempts), reason)
        return Verdict(Decision.FAILED, reason=reason)
