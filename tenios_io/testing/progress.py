"""ProgressRecorder: a progress listener that remembers what it heard (see tenios_io.testing)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ProgressRecorder"]


@dataclass
class ProgressRecorder:
    """A :class:`~tenios_io.progress.ProgressListener` that adds up what it is told."""

    bytes: int = 0
    """Bytes fetched, net of restarted fetches."""
    found: int = 0
    """Recordings discovered during the run."""
    done: list[str] = field(default_factory=list)
    """Each recording's outcome, in order."""

    def bytes_fetched(self, n: int) -> None:
        self.bytes += n

    def recording_done(self, outcome: str, size: int) -> None:
        self.done.append(outcome)

    def discovered(self, n: int) -> None:
        self.found += n
