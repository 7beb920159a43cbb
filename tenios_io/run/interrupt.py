"""Ctrl-C and SIGTERM during a run (issue 12): stop claiming, finish or give back.

The first SIGINT or SIGTERM stops the run the way a run-wide failure does
(run/stop.py): nothing more is claimed, each batch in flight finishes the recording it
is working on and releases the rest of its claims to ``pending`` without spending an
attempt, one ``run_stopped`` custody event says why, the summary is written and the
run exits 130 (SIGINT) or 143 (SIGTERM).  If the recordings in flight take longer
than the grace (``GRACE_SECONDS``), or a second signal comes, the run gives back
every claim it still holds at once (pending, no attempt spent: an object already
uploaded is found archived by the next run) and exits without waiting for them.

The handler only sets flags, which the run loop (run/loop.py) acts on; outside the loop
(before any claim) a second signal ends the command at once (:class:`RunInterrupted`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from tenios_io.run.stop import RunStop

#: How long in-flight recordings may take to finish after the first signal.
GRACE_SECONDS = 10.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """A second signal outside the run loop: end the command now (nothing is claimed)."""

    def __init__(self, signum: signal.Signals) -> None:
        super().__init__(f"interrupted by {signum.name}")
        self.signal = signum
        self.exit_code = 128 + int(signum)


class Interruption:
    """SIGINT / SIGTERM of one run, as flags the run loop reads (thread-safe)."""

    def __init__(
        self,
        *,
        grace_seconds: float = GRACE_SECONDS,
        notify: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.notify = notify
        """Told (by the run loop, not the handler) what the run does about a signal."""
        self._clock = clock
        self.stop = threading.Event()
        """Set by the first signal: claim nothing more."""
        self.signal: signal.Signals | None = None
        self._first_at: float | None = None
        self._again = False
        self.looping = False
        """True while the run loop holds claims: it, not the handler, acts on signals."""

    def received(self, signum: int) -> None:
        """A signal arrived (the handler; callable from tests too)."""
        if self.signal is None:
            self.signal = signal.Signals(signum)
            self._first_at = self._clock()
            self.stop.set()
        else:
            self._again = True
            if not self.looping:
                raise RunInterrupted(self.signal)

    @property
    def abort(self) -> bool:
        """Give back every claim now: a second signal came or the grace ran out."""
        if self._again:
            return True
        return self._first_at is not None and self._clock() - self._first_at >= self.grace_seconds

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + int(self.signal or 0)

    def stopping(self, batches_in_flight: int) -> None:
        """The run loop acted on the first signal: say what happens now."""
        if self.notify is None or self.signal is None:
            return
        key = "Ctrl-C" if self.signal is signal.SIGINT else self.signal.name
        self.notify(
            f"{self.signal.name}: claiming nothing more; "
            f"{batches_in_flight} batch(es) in flight finish their current recording "
            f"(up to {self.grace_seconds:.0f} s) and give the rest back. "
            f"{key} again gives everything back now."
        )

    def giving_back(self, claims: int) -> None:
        """The run loop gives back ``claims`` in flight at once: say why."""
        if self.notify is None or self.signal is None:
            return
        why = (
            f"{self.signal.name} again"
            if self._again
            else f"the recordings in flight took longer than {self.grace_seconds:.0f} s"
        )
        self.notify(f"{why}: giving {claims} claim(s) back now, without waiting for them.")

    def run_stop(self) -> RunStop:
        """The stop that this signal causes (run/stop.py)."""
        if self.signal is None:
            raise RuntimeError("no signal was received")
        how = "Ctrl-C or kill -INT" if self.signal is signal.SIGINT else "kill or a service stop"
        return RunStop(
            f"interrupted by {self.signal.name}",
            "Run it again to continue",
            self.exit_code,
            f"{self.signal.name} ({how})",
        )

    @contextmanager
    def installed(self) -> Iterator[Interruption]:
        """Handle SIGINT and SIGTERM in this (the main) thread for the block."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            self.received(signum)

        if threading.current_thread() is not threading.main_thread():
            yield self  # only the main thread may handle signals (a run in a test thread)
            return
        previous = {s: signal.signal(s, handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
