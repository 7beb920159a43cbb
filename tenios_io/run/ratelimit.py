"""An in-process rate limit for TENIOS API requests.

Used when no Prefect server coordinates the workers (ephemeral runs, the CLI
without PREFECT_API_URL); with a server the flows use Prefect's global rate
limit instead, which holds across processes.  A token bucket is a dozen lines
and no maintained library offers a thread-safe, blocking one without pulling in
a backend; hence our own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Blocking token bucket: ``acquire()`` waits until a request may go out."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting as long as needed."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)

    __call__ = acquire
