"""Named points between the pipeline's steps, where a crash is most instructive.

``reached(name)`` does nothing.  The crash tests run a real `tenios-archive run
nightly` in a child process that replaces it, so the child stops exactly at
``after_fetch``, ``after_upload``, ``multipart_part_uploaded`` ... and is then
killed with SIGKILL; the re-run must end with one object per recording and a
consistent ledger.  In the ledger, ``integrated_uncommitted`` (the sequencer has
written its chain entries) and ``leased_write_uncommitted`` (a worker has written
its state change and events) stop a transaction just before its commit;
``import_chunk_uncommitted`` and ``import_chunk_committed`` stop an import just before
and just after a chunk of its merge commits; ``sweep_file_looked_at`` follows each drop
file a sweep has sorted (the signal tests pause there).
"""

from __future__ import annotations


def reached(name: str) -> None:
    """A step boundary was reached (no-op outside the crash tests)."""
