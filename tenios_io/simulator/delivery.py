"""Delivery of finished recordings to an SFTP drop folder, the way TENIOS pushes them.

The folder is a plain local directory (someone else serves it over SFTP).  Each
file is first written as ``.{name}.part`` beside its final place and renamed
when complete, so a reader never sees a half-written file under its real name.
TENIOS does not document its naming, so the pattern is configurable.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from tenios_io.simulator.catalogue import Recording

PLACEHOLDERS = ("recording_uuid", "call_uuid", "date", "channels")
"""``{date}`` is the UTC stop time (a datetime: ``{date:%Y%m%d}``); ``{channels}`` is 1 or 2."""


class DropFolder:
    """Writes recordings into ``directory`` under ``name_pattern`` (may contain ``/``)."""

    def __init__(self, directory: str | Path, name_pattern: str = "{recording_uuid}.wav") -> None:
        self.directory = Path(directory)
        self.name_pattern = name_pattern
        # Render a sample now, so a bad pattern fails when the simulator is built.
        self._render(
            recording_uuid="00000000-0000-4000-8000-000000000000",
            call_uuid="00000000-0000-4000-8000-000000000001",
            date=datetime(2000, 1, 1, tzinfo=UTC),
            channels=1,
        )

    def name_for(self, recording: Recording) -> str:
        """The relative path a recording is delivered under."""
        when = recording.stopped_at if recording.stopped_at is not None else recording.started_at
        return self._render(
            recording_uuid=recording.recording_uuid,
            call_uuid=recording.call_uuid,
            date=datetime.fromtimestamp(when, UTC),
            channels=recording.audio.channels,
        )

    def deliver(self, recording: Recording) -> Path:
        """Write the recording (streamed) and return its final path."""
        final = self.directory / self.name_for(recording)
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(f".{final.name}.part")
        with part.open("wb") as out:
            for chunk in recording.audio.chunks():
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, final)
        return final

    def _render(self, **values: object) -> str:
        try:
            name = self.name_pattern.format(**values)
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"drop name pattern {self.name_pattern!r}: unknown placeholder {exc}; "
                f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            ) from None
        except ValueError as exc:
            raise ValueError(f"drop name pattern {self.name_pattern!r}: {exc}") from None
        path = PurePosixPath(name)
        if not name or path.is_absolute() or ".." in path.parts or name.endswith("/"):
            raise ValueError(
                f"drop name pattern {self.name_pattern!r} must give a relative file name "
                f"inside the drop folder (got {name!r})"
            )
        return name
