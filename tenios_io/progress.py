"""Progress events from the archiving code to whoever shows them (the CLI's progress bar).

A listener is passed in: the CLI builds its bar and hands it through the run loop
(:func:`tenios_io.run.session.run_in_process` → :func:`tenios_io.run.pipeline.open_pipeline`)
to the :class:`~tenios_io.run.archiver.Archiver` and the drop sweep, where the events
happen.  Whoever passes none gets :data:`NO_PROGRESS`, which ignores them: the
Prefect flows' tasks take plain data and report no events, so the CLI feeds its bar
for a run through Prefect from the ledger instead (:mod:`tenios_io.run.progress_poll`).
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = ["NO_PROGRESS", "NoProgress", "ProgressListener"]


class ProgressListener(Protocol):
    """What a run tells its progress display (called from the batches' threads)."""

    def bytes_fetched(self, n: int) -> None:
        """``n`` more bytes fetched (negative: a fetch restarted and gave them back)."""

    def recording_done(self, outcome: str, size: int) -> None:
        """A recording's attempt ended with ``outcome`` (an ``Outcome`` value)."""

    def discovered(self, n: int) -> None:
        """``n`` more recordings became due during the run (e.g. found on the SFTP drop)."""


class NoProgress:
    """A listener that ignores every event."""

    def bytes_fetched(self, n: int) -> None:
        pass

    def recording_done(self, outcome: str, size: int) -> None:
        pass

    def discovered(self, n: int) -> None:
        pass


NO_PROGRESS: Final[ProgressListener] = NoProgress()
"""The listener of runs nobody watches."""
