"""What the operator applies to a Prefect server once, from configuration: the TENIOS
API rate limit (the ``tenios-api`` global concurrency limit every run shares).

Runs only read what was applied (flows/limits.py); none creates or changes it, so
the limit is the operator's setting, not that of whichever run started last.
Prefect's ``prefect.yaml`` cannot declare a global concurrency limit (Prefect 3: UI,
CLI, SDK, API or Terraform only), hence ``tenios-archive prefect apply``.

Imported only where Prefect is used (the ``prefect`` command, the flows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.exceptions import ObjectNotFound

from tenios_io.exceptions import ConfigError

LIMIT_NAME = "tenios-api"
APPLY_COMMAND = "tenios-archive prefect apply"


@dataclass(frozen=True)
class ServerRateLimit:
    """The server's ``tenios-api`` limit: ``per_second`` slots decay per second, at most
    ``burst`` taken at once."""

    per_second: float
    burst: int
    active: bool


def burst_of(rate: float) -> int:
    """Slots of the limit for ``rate`` requests/s: one second's worth, at least one."""
    return max(1, math.ceil(rate))


def read_rate_limit() -> ServerRateLimit | None:
    """The server's ``tenios-api`` limit (None: there is none)."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_global_concurrency_limit_by_name(LIMIT_NAME)
        except ObjectNotFound:
            return None
    return ServerRateLimit(
        per_second=float(found.slot_decay_per_second or 0.0),
        burst=found.limit,
        active=found.active,
    )


def apply_rate_limit(rate: float | None) -> str:
    """Make the server's ``tenios-api`` limit ``rate`` requests/s (None: no limit, the
    limit is deleted).  Returns what was done, for the operator."""
    current = read_rate_limit()
    with get_client(sync_client=True) as client:
        if rate is None:
            if current is None:
                return f"{LIMIT_NAME}: none (TENIOS_API_RATE_LIMIT unset)"
            client.delete_global_concurrency_limit_by_name(LIMIT_NAME)
            return f"{LIMIT_NAME}: deleted (TENIOS_API_RATE_LIMIT unset)"
        wanted = ServerRateLimit(per_second=rate, burst=burst_of(rate), active=True)
        if current == wanted:
            return f"{LIMIT_NAME}: {rate:g} requests/s (unchanged)"
        if current is None:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=LIMIT_NAME, limit=wanted.burst, slot_decay_per_second=rate, active=True
                )
            )
            return f"{LIMIT_NAME}: {rate:g} requests/s (created)"
        client.update_global_concurrency_limit(
            LIMIT_NAME,
            GlobalConcurrencyLimitUpdate(
                limit=wanted.burst, slot_decay_per_second=rate, active=True
            ),
        )
        return f"{LIMIT_NAME}: {rate:g} requests/s (was {current.per_second:g})"


def require_rate_limit(rate: float | None) -> ServerRateLimit | None:
    """The limit a run uses through Prefect: the server's, whatever ``rate`` this run's
    settings say (None: the server has none and the run sets none).

    A run whose settings ask for a rate on a server without the limit is a
    configuration error: the operator applies the limit once, runs never create it.
    """
    found = read_rate_limit()
    if found is None and rate is not None:
        raise ConfigError(
            f"a TENIOS API rate limit is set ({rate:g} requests/s) but the Prefect server "
            f"has no {LIMIT_NAME!r} limit: run `{APPLY_COMMAND}` once with "
            "TENIOS_API_RATE_LIMIT set (runs never create or change it)"
        )
    return found
