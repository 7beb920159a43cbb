"""The TENIOS API rate limit: Prefect's global rate limit when a Prefect server
coordinates the workers, an in-process token bucket otherwise."""

from __future__ import annotations

import math
from collections.abc import Callable

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from tenios_io.ratelimit import TokenBucket

LIMIT_NAME = "tenios-api"


def api_rate_limiter(rate: float | None) -> Callable[[], None] | None:
    """The ``before_request`` hook for the TENIOS client (None: no limit)."""
    if rate is None:
        return None
    if not PREFECT_API_URL.value():
        return TokenBucket(rate)
    _ensure_global_limit(rate)

    def acquire() -> None:
        rate_limit(LIMIT_NAME, occupy=1, strict=True)

    return acquire


def _ensure_global_limit(rate: float) -> None:
    """Create or update the server's ``tenios-api`` limit: ``rate`` slots decay per second."""
    burst = max(1, math.ceil(rate))
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(LIMIT_NAME)
        except ObjectNotFound:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=LIMIT_NAME, limit=burst, slot_decay_per_second=rate, active=True
                )
            )
            return
        client.update_global_concurrency_limit(
            LIMIT_NAME,
            GlobalConcurrencyLimitUpdate(limit=burst, slot_decay_per_second=rate, active=True),
        )
