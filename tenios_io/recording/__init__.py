"""One recording's bytes, wherever they come from.

The seam every source writes through (:mod:`~tenios_io.recording.source`: the
``Sink``, ``RecordingSource`` and fetch request/result types), the spool that hashes
them with SHA-256 on their way to disk with memory bounded whatever the size
(:mod:`~tenios_io.recording.spool`), and the check that a recording is a whole,
readable audio file before it is uploaded (:mod:`~tenios_io.recording.validation`).
No network, no SQL: the sources themselves live with their peers (``tenios_io.api``,
:mod:`tenios_io.sftp`).
"""
