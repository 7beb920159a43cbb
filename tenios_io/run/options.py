"""How one run goes, as one typed object: imports nothing heavy, so the CLI builds it
before anything of the run is loaded (``run --help`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_IN_FLIGHT",
    "MAX_CONCURRENCY",
    "MAX_IN_FLIGHT",
    "RunOptions",
]

#: Upper bound of parallel batches in one process; ``concurrency`` picks up to this many.
MAX_CONCURRENCY = 32
#: Batches in parallel when no ``--concurrency`` / flow parameter says otherwise.
DEFAULT_CONCURRENCY = 8
#: Upper bound of recordings in the air at once in one process (``TENIOS_IN_FLIGHT``).
MAX_IN_FLIGHT = 1024
#: ``TENIOS_IN_FLIGHT``'s default, for a nightly run: with TENIOS ~100 ms and S3 tens of
#: ms away a recording spends ~150 ms in round trips, so 64 in the air carry ~400
#: recordings/s — a night's calls in minutes — while one process's CPU, not the
#: peers, stays the limit and TENIOS (which documents no rate limit) sees at most 64
#: requests at once.  A backfill of millions raises it (``--in-flight 256``).
DEFAULT_IN_FLIGHT = 64


@dataclass(frozen=True)
class RunOptions:
    """How one run goes: what ``run nightly`` / ``run backfill`` options and a flow's
    parameters say, in one typed object for every way a run is started.  The
    concurrency is held to 1..:data:`MAX_CONCURRENCY` here, once.

    Two numbers shape the run: ``concurrency``, batches in flight (each one claim and
    one ledger writer, as before), and ``in_flight``, recordings in the air at once in
    the process (fetch, hash, upload, read-back each on a thread of their own, fed by
    the batches; None: one per batch, the CLI and the flows fill in
    ``TENIOS_IN_FLIGHT``).  The run keeps enough batches claimed to feed ``in_flight``
    recordings (:attr:`batches`), and never fewer recordings in the air than batches
    (``--concurrency`` alone works as before)."""

    concurrency: int = 8
    batch_size: int = 50
    limit: int | None = None
    time_budget_minutes: float | None = None
    max_wait_seconds: float = 120.0
    rate_limit: float | None = None
    """TENIOS API requests/s for this run (None: ``TENIOS_API_RATE_LIMIT``)."""
    in_flight: int | None = None
    """Recordings in the air at once (None: ``TENIOS_IN_FLIGHT``, else its default)."""
    concurrency_given: bool = False
    """``concurrency`` was asked for (an option, a flow parameter), not left at its
    default: with no ``in_flight`` and no ``TENIOS_IN_FLIGHT`` given either, it caps
    the recordings in the air too, as before the setting existed."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "concurrency", max(1, min(self.concurrency, MAX_CONCURRENCY)))
        if self.in_flight is not None and not 1 <= self.in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"in_flight must be 1..{MAX_IN_FLIGHT}, got {self.in_flight}")

    def with_in_flight(self, setting: int, *, setting_given: bool = False) -> RunOptions:
        """These options with ``in_flight`` set: kept when given; else ``setting``
        (``TENIOS_IN_FLIGHT``) when the operator gave it; else ``concurrency`` when that
        was given (a gentle run stays gentle); else the setting's default."""
        if self.in_flight is not None:
            return self
        if self.concurrency_given and not setting_given:
            return replace(self, in_flight=self.concurrency)
        return replace(self, in_flight=setting)

    @property
    def recordings(self) -> int:
        """Recordings in the air at once: ``in_flight``, at least one per batch (unset:
        one per batch, as before there was a setting; the CLI and the flows set it from
        ``TENIOS_IN_FLIGHT`` with :meth:`with_in_flight`)."""
        return max(self.in_flight or self.concurrency, self.concurrency)

    @property
    def batches(self) -> int:
        """Batches kept in flight: ``concurrency``, or enough to keep :attr:`recordings`
        busy while batches end and new ones are claimed (twice the batches they fill)."""
        if self.recordings == self.concurrency:
            return self.concurrency
        return max(self.concurrency, 2 * -(-self.recordings // max(1, self.batch_size)))
