"""How one run goes, as one typed object: imports nothing heavy, so the CLI builds it
before anything of the run is loaded (``run --help`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_CONCURRENCY", "RunOptions"]

#: Upper bound of parallel batches in one process; ``concurrency`` picks up to this many.
MAX_CONCURRENCY = 32


@dataclass(frozen=True)
class RunOptions:
    """How one run goes: what ``run nightly`` / ``run backfill`` options and a flow's
    parameters say, in one typed object for every way a run is started.  The
    concurrency is held to 1..:data:`MAX_CONCURRENCY` here, once."""

    concurrency: int = 8
    batch_size: int = 50
    limit: int | None = None
    time_budget_minutes: float | None = None
    max_wait_seconds: float = 120.0
    rate_limit: float | None = None
    """TENIOS API requests/s for this run (None: ``TENIOS_API_RATE_LIMIT``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "concurrency", max(1, min(self.concurrency, MAX_CONCURRENCY)))
