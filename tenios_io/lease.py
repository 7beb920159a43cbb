"""Keeping claimed recordings' leases alive while a batch works on them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from types import TracebackType

from tenios_io.ledger import Claim, Ledger

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of a batch's unfinished claims every ``lease_seconds / 3``.

    A large recording may take longer than one lease to fetch and upload; without
    renewal another worker would rescue it and this one's final write would be
    fenced off (StaleLease) — safe, but wasted work.  A lease that turns out to be
    lost is dropped from the set and reported by ``lost``.
    """

    def __init__(self, ledger: Ledger, claims: Iterable[Claim], lease_seconds: float) -> None:
        self._ledger = ledger
        self._lease_seconds = lease_seconds
        self._held = {c.recording_uuid: c.lease_token for c in claims}
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
