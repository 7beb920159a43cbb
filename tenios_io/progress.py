"""Progress events from the pipeline to whoever shows them (the CLI's progress bar).

The archiving code publishes; a listener subscribes for the duration of a run.
Prefect tasks run in threads of the same process, so a process-wide, thread-safe
list of listeners reaches them without passing callables through flow parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class ProgressListener(Protocol):
    def bytes_fetched(self, n: int) -> None: ...

    def recording_done(self, outcome: str, size: int) -> None: ...

    def discovered(self, n: int) -> None: ...


_listeners: list[ProgressListener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: ProgressListener) -> Iterator[None]:
    """Deliver progress events to ``listener`` inside the block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def bytes_fetched(n: int) -> None:
    for listener in list(_listeners):
        listener.bytes_fetched(n)


def recording_done(outcome: str, size: int) -> None:
    for listener in list(_listeners):
        listener.recording_done(outcome, size)


def discovered(n: int) -> None:
    """``n`` more recordings became due during the run (e.g. found on the SFTP drop)."""
    for listener in list(_listeners):
        listener.discovered(n)
