"""The TENIOS API rate limit: Prefect's global rate limit when a Prefect server
coordinates the workers, an in-process token bucket otherwise.

Through Prefect a run only uses the server's ``tenios-api`` limit, which the operator
applies once from configuration (``tenios-archive prefect apply``); it never creates
or changes it.  Every run uses it, whatever its own rate setting; a run that asks for
a rate on a server without the limit fails before any work (ConfigError)."""

from __future__ import annotations

from collections.abc import Callable

from prefect.concurrency.sync import rate_limit
from prefect.logging import get_logger
from prefect.settings import PREFECT_API_URL

from tenios_io.ops.prefect_setup import LIMIT_NAME, require_rate_limit
from tenios_io.run.ratelimit import TokenBucket

__all__ = ["LIMIT_NAME", "api_rate_limiter"]


def api_rate_limiter(rate: float | None) -> Callable[[], None] | None:
    """The ``before_request`` hook for the TENIOS client (None: no limit)."""
    if not PREFECT_API_URL.value():
        return None if rate is None else TokenBucket(rate)
    server = require_rate_limit(rate)
    if server is None:
        return None
    if rate is not None and rate != server.per_second:
        get_logger("tenios_archive.limits").warning(
            "this run's TENIOS API rate limit (%g requests/s) is not the Prefect server's "
            "%r limit (%g requests/s): the server's applies to every worker "
            "(`tenios-archive prefect apply` changes it)",
            rate,
            LIMIT_NAME,
            server.per_second,
        )

    def acquire() -> None:
        rate_limit(LIMIT_NAME, occupy=1, strict=True)

    return acquire
