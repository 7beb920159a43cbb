"""FakeSource: recordings from a dict, with scripted failures (see tenios_io.testing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tenios_io.exceptions import RecordingNotFound, SourceFileMissing
from tenios_io.recording.source import Fetched, FetchRequest, Sink

__all__ = ["FakeSource"]

#: Bytes a fetch writes before it fails or starts over (a download cut short).
PARTIAL = 10


@dataclass
class FakeSource:
    """A :class:`~tenios_io.recording.source.RecordingSource` serving ``recordings`` (uuid → bytes).

    Each fetch first writes a few bytes, then raises the next of ``errors`` if any
    (a failed download), else starts the sink over and writes the whole recording, as
    a retried download does.  A uuid it does not hold is ``RecordingNotFound`` (the
    API's 404) for the ``api`` source, ``SourceFileMissing`` for any other (a file
    gone from the drop).  ``released``: the uuids ``after_archived`` was called for.
    """

    recordings: dict[str, bytes] = field(default_factory=dict)
    name: str = "api"
    errors: list[Exception] = field(default_factory=list)
    available: bool = True
    released: list[str] = field(default_factory=list)
    release_error: Exception | None = None

    def can_fetch(self, request: FetchRequest) -> bool:
        return self.available

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        data = self.recordings.get(request.recording_uuid.lower())
        if data is None:
            if self.name == "api":
                raise RecordingNotFound(
                    f"no recording {request.recording_uuid}", recording_uuid=request.recording_uuid
                )
            raise SourceFileMissing(
                f"{request.recording_uuid} is not at {self.name}",
                recording_uuid=request.recording_uuid,
            )
        sink.write(data[:PARTIAL])
        if self.errors:
            raise self.errors.pop(0)
        sink.seek(0)
        sink.truncate()
        sink.write(data)
        return Fetched(source=self.name, size=len(data), declared_size=len(data))

    def after_archived(self, request: FetchRequest, fetched: Fetched) -> str | None:
        if self.release_error is not None:
            raise self.release_error
        self.released.append(request.recording_uuid)
        return "deleted" if self.name == "sftp" else None
