"""Keeping claimed recordings' leases alive while a batch works on them."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from tenios_io.ledger import Claim, Ledger
from tenios_io.ledger.records import THIS_PROCESS

log = logging.getLogger(__name__)

#: A batch's first start skips the up-front renewal when every claim is younger than
#: this fraction of the lease: the keeper's first renewal, ``lease / 3`` after the
#: start, then still comes before two thirds of the lease have passed.
FRESH_FRACTION = 1 / 3


class BatchStarts:
    """Which claims a batch has started on in this process: tells a batch's first start
    (its claims fresh from this process's claim) from a re-run (Prefect retrying a batch
    that crashed halfway), which must renew first to find what it already finished.

    Remembers a lease token only while its claim could count as fresh (younger than
    ``FRESH_FRACTION`` of the lease): an older claim renews anyway, so a run of a
    million recordings holds only the tokens of its last few batches.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started: OrderedDict[str, float] = OrderedDict()
        """lease token → when its claim was made (monotonic), in the order started."""

    def first_and_fresh(self, claims: Sequence[Claim], lease_seconds: float) -> bool:
        """Whether this is the first start of a batch of claims every one of which this
        process made less than ``FRESH_FRACTION`` of the lease ago; notes the start."""
        window = lease_seconds * FRESH_FRACTION
        now = self._clock()
        fresh = all(
            claim.claimed_in == THIS_PROCESS
            and claim.claimed_at is not None
            and now - claim.claimed_at < window
            for claim in claims
        )
        with self._lock:
            # Oldest first (batches start about in claim order; one started out of order
            # is kept a little longer, which only means one more renewal).
            while self._started:
                _token, at = next(iter(self._started.items()))
                if now - at < window:
                    break
                self._started.popitem(last=False)
            first = not any(claim.lease_token in self._started for claim in claims)
            for claim in claims:
                claimed = claim.claimed_at if claim.claimed_in == THIS_PROCESS else None
                self._started[claim.lease_token] = now if claimed is None else claimed
        return first and fresh

    def __len__(self) -> int:
        """How many lease tokens it remembers."""
        with self._lock:
            return len(self._started)


class LeaseKeeper:
    """Renews the leases of a batch's unfinished claims every ``lease_seconds / 3``.

    A large recording may take longer than one lease to fetch and upload; without
    renewal another worker would rescue it and this one's final write would be
    fenced off (StaleLease) — safe, but wasted work.  A lease that turns out to be
    lost is dropped from the set and reported by ``lost``.
    """

    def __init__(
        self,
        ledger: Ledger,
        claims: Iterable[Claim],
        lease_seconds: float,
        *,
        starts: BatchStarts | None = None,
    ) -> None:
        self._ledger = ledger
        self._lease_seconds = lease_seconds
        self._claims = list(claims)
        self._starts = starts
        self._held = {c.recording_uuid: c.lease_token for c in self._claims}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self.lost: set[str] = set()

    def done(self, recording_uuid: str) -> None:
        """Stop renewing one recording (its claim has ended)."""
        with self._lock:
            self._held.pop(recording_uuid, None)

    def renew_now(self) -> None:
        """Renew every held lease once (one statement for the whole batch)."""
        with self._lock:
            held = list(self._held.items())
        lost = self._ledger.renew_many(held, self._lease_seconds)
        if lost:
            log.warning(
                "%d lease(s) lost to another worker: %s", len(lost), ", ".join(sorted(lost))
            )
            with self._lock:
                for key in lost:
                    self._held.pop(key, None)
                self.lost |= lost

    def _run(self) -> None:
        interval = max(1.0, self._lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                self.renew_now()
            except Exception:  # the database may blip; the next round tries again
                log.warning("lease renewal failed; retrying in %.0f s", interval, exc_info=True)

    def __enter__(self) -> LeaseKeeper:
        # Renew once up front: when Prefect re-runs a batch that crashed halfway, the
        # recordings it already finished show up as lost here and are not fetched again.
        # Not at a batch's first start with claims this process has just made (with
        # ``starts``): nothing of it is finished yet and the leases are young, so the
        # renewal would be one write transaction per batch for nothing.
        if self._starts is None or not self._starts.first_and_fresh(
            self._claims, self._lease_seconds
        ):
            self.renew_now()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
