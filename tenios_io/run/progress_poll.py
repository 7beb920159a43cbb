"""A live progress bar for runs whose events this process does not hear.

A run through a Prefect API archives in the flow's tasks, possibly in other processes
or on other workers: no :class:`~tenios_io.progress.ProgressListener` reaches them.
The ledger sees every outcome, though, so :class:`LedgerProgress` reads a few cheap
counts from it (:func:`tenios_io.ledger.stats.run_counts`: the run's own changes and
the open work up to a cap, never the whole backlog) and tells a listener what changed
since its last look, in the listener's own terms: ``recording_done`` once per recording
that reached an end state, ``discovered`` when the work left outgrows the total.
:func:`polling` does that about once a second while a run is in progress, and once
more when it ends.  A failed look skips that tick: the run never sees it.

Recordings are counted by the state their row ended in (``updated_at`` since the
poller started, by the workers' clocks): an operator's change in the meantime counts
too.  Bytes fetched are not in the ledger until a recording is archived, so a run
watched this way shows recordings, not bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from tenios_io.ledger.reads import Reads
from tenios_io.ledger.stats import ENDED, run_counts
from tenios_io.progress import ProgressListener

__all__ = ["INTERVAL_SECONDS", "LedgerProgress", "polling"]

log = logging.getLogger(__name__)

#: How often :func:`polling` looks at the ledger.
INTERVAL_SECONDS = 1.0
#: A look waits at least this many times its own duration before the next.
LOAD_FACTOR = 10


class LedgerProgress:
    """Turns the ledger's counts since ``since`` into events for ``listener``.

    ``total`` is what the listener was told is due (None: it was told no total, so
    nothing is reported as discovered).  ``cap`` bounds the open-work counts.
    """

    def __init__(
        self,
        ledger: Reads,
        listener: ProgressListener,
        *,
        total: int | None,
        since: datetime | None = None,
        cap: int = 1000,
    ) -> None:
        self._ledger = ledger
        self._listener = listener
        self._total = total
        self._since = since if since is not None else ledger.now()
        self._cap = cap
        self._reported = {state.value: 0 for state in ENDED}

    @property
    def done(self) -> int:
        """Recordings reported as ended so far."""
        return sum(self._reported.values())

    def tick(self) -> bool:
        """Look once and report what changed; False when the look failed (nothing
        reported, the next tick tries again).  Never raises."""
        try:
            counts = run_counts(self._ledger, self._since, cap=self._cap)
        except Exception as exc:  # noqa: BLE001 - a failed look must never reach the run
            log.debug("progress poll skipped: %s", type(exc).__name__)
            return False
        new = {s: max(0, n - self._reported[s]) for s, n in counts.ended.items()}
        ended = self.done + sum(new.values())
        if self._total is not None:
            # The total only grows: by what is left when that is known exactly (the
            # sweep registered some, retries came due), else by what already ended.
            target = max(self._total, ended)
            if counts.exact:
                target = max(target, ended + counts.in_progress + counts.due)
            if target > self._total:
                self._listener.discovered(target - self._total)
                self._total = target
        for state, n in new.items():
            for _ in range(n):
                self._listener.recording_done(state, 0)
            self._reported[state] += n
        return True


@contextmanager
def polling(poller: LedgerProgress, interval: float = INTERVAL_SECONDS) -> Iterator[LedgerProgress]:
    """Tick ``poller`` every ``interval`` seconds in a background thread while the
    block runs, then once more for the final counts.  A look that took long (a run of
    a million recordings is a long range to count) stretches the wait before the next
    to ``LOAD_FACTOR`` times its duration: the bar never keeps the database busy."""
    stop = threading.Event()

    def loop() -> None:
        wait = interval
        while not stop.wait(wait):
            started = time.monotonic()
            poller.tick()
            wait = max(interval, LOAD_FACTOR * (time.monotonic() - started))

    thread = threading.Thread(target=loop, name="ledger-progress", daemon=True)
    thread.start()
    try:
        yield poller
    finally:
        stop.set()
        thread.join()
        poller.tick()
