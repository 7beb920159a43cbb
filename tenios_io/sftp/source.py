"""The SFTP drop as a :class:`~tenios_io.recording.source.RecordingSource` for the
archiving pipeline."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tenios_io.config import Settings
from tenios_io.exceptions import SourceFileMissing, SourceOutsideDrop, TeniosArchiveError
from tenios_io.recording.source import Fetched, FetchRequest, RecordingSource, Sink
from tenios_io.sftp.connect import SftpConnection, connect_sftp
from tenios_io.sftp.drop import SftpDrop

__all__ = ["SftpSource"]

logger = logging.getLogger(__name__)


class SftpSource:
    """Recordings from the customer's SFTP drop, by the path the ledger recorded for them.

    ``can_fetch`` is true when the request has a ``source_path`` and that file is there;
    ``fetch`` streams it (``Fetched.source`` is ``"sftp:<path>"``); ``after_archived``
    applies TENIOS_SFTP_AFTER and returns what it did.  Errors carry the request's
    ``recording_uuid``.  A connection problem raises SourceUnavailable from every method,
    ``can_fetch`` included: "the server is down" is not "the file is not there".
    """

    name: str = "sftp"

    def __init__(self, drop: SftpDrop, *, connection: SftpConnection | None = None) -> None:
        self.drop = drop
        self._connection = connection  # closed by close() when given

    @classmethod
    def from_settings(cls, settings: Settings, **connect_options: Any) -> SftpSource:
        """Connect to TENIOS_SFTP_URL (see :func:`connect_sftp`) and wrap the drop there."""
        connection = connect_sftp(settings, **connect_options)
        return cls(SftpDrop.from_settings(connection, settings), connection=connection)

    def can_fetch(self, request: FetchRequest) -> bool:
        """Whether the ledger knows a drop path for the recording and the file is there."""
        if not request.source_path:
            return False
        try:
            return self.drop.exists(request.source_path)
        except SourceOutsideDrop as exc:
            # Never followed (a producer's hint, issue 25): the next source (the API)
            # fetches the recording; the file outside the drop is not touched.
            logger.warning("recording %s: %s", request.recording_uuid, exc)
            return False
        except TeniosArchiveError as exc:
            _tag(exc, request)
            raise

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        """Stream the recording's drop file into ``sink``."""
        path = request.source_path
        try:
            if not path:
                raise SourceFileMissing("the ledger has no SFTP path for this recording")
            wanted = request.recording_uuid.lower()
            named = {*self.drop.uuids_of(path), self.drop.recording_uuid_of(path)} - {None}
            if named and wanted not in named:
                # Never archive one recording's bytes under another's uuid.
                raise SourceFileMissing(
                    f"SFTP file {path} names recording {', '.join(sorted(map(str, named)))}, "
                    f"not {wanted}"
                )
            read = self.drop.fetch_file(path, sink)
        except TeniosArchiveError as exc:
            _tag(exc, request)
            raise
        return Fetched(
            source=f"sftp:{path}", size=read.size, content_type=None, source_mtime=read.mtime
        )

    def release_drop(self) -> SftpDrop:
        """The drop (tenios_io.sftp.release releases archived files from it, intent first)."""
        return self.drop

    def after_archived(self, request: FetchRequest, fetched: Fetched) -> str | None:
        """Release the drop file (keep / move / delete) now that the archive copy is
        verified, if it is still the file that was read (size and mtime).  The run uses
        :mod:`tenios_io.sftp.release`, which records the intent first."""
        if not request.source_path:
            return None
        try:
            return self.drop.release(
                request.source_path,
                expected_size=fetched.size,
                expected_mtime=fetched.source_mtime,
            )
        except TeniosArchiveError as exc:
            _tag(exc, request)
            raise

    def close(self) -> None:
        """Close the connection this source opened (if any)."""
        if self._connection is not None:
            self._connection.close()

    def __enter__(self) -> SftpSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _tag(exc: TeniosArchiveError, request: FetchRequest) -> None:
    if exc.recording_uuid is None:
        exc.recording_uuid = request.recording_uuid


if TYPE_CHECKING:  # mypy checks that SftpSource satisfies the protocol

    def _is_a_recording_source(source: SftpSource) -> RecordingSource:
        return source

    def _is_a_drop_source(source: SftpSource) -> DropSource:
        return source


@runtime_checkable
class DropSource(Protocol):
    """A source whose copy is released (moved or deleted) after archiving: the SFTP
    drop.  The release itself, intent first, is :mod:`tenios_io.sftp.release`'s."""

    def release_drop(self) -> SftpDrop:
        """The drop the source's files are released from."""
        ...
