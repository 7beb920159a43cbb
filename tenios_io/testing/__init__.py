"""Small in-memory fakes of what the :class:`~tenios_io.run.archiver.Archiver` needs, for
unit tests: :class:`MemoryStore` (the store, :class:`tenios_io.store.protocols.ArchiverStore`)
and :class:`FakeSource` (a :class:`tenios_io.recording.source.RecordingSource`), and a
:class:`ProgressRecorder` (a :class:`tenios_io.progress.ProgressListener`).

They are held to the same contract as the real ones (moto over HTTP, the simulator's
API over HTTP) by tests/integration/test_fakes_contract.py, so a fake cannot drift
from what it stands in for.  Real peers stay at every boundary in the other tests;
these only add fast unit tests of the Archiver's decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenios_io.testing.progress import ProgressRecorder
from tenios_io.testing.source import FakeSource
from tenios_io.testing.store import MemoryStore

if TYPE_CHECKING:
    from tenios_io.progress import ProgressListener
    from tenios_io.recording.source import RecordingSource
    from tenios_io.store.protocols import ArchiverStore

__all__ = ["FakeSource", "MemoryStore", "ProgressRecorder"]

if TYPE_CHECKING:  # mypy holds each fake to the Protocol it stands in for

    def _conforms(
        store: MemoryStore, source: FakeSource, progress: ProgressRecorder
    ) -> tuple[ArchiverStore, RecordingSource, ProgressListener]:
        return store, source, progress
