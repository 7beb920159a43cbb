"""Picking recordings up from the customer's SFTP drop (paramiko).

- :mod:`~tenios_io.sftp.connect` — ``sftp://`` URL, authentication, host-key checking,
  the reconnecting :class:`SftpConnection` and :func:`connect_sftp`;
- :mod:`~tenios_io.sftp.drop` — :class:`SftpDrop`: sweep for settled files, fetch with
  read-ahead into a sink, release (keep / move / delete) after archiving;
- :mod:`~tenios_io.sftp.source` — :class:`SftpSource`, the drop as a RecordingSource.

Typical use::

    with SftpSource.from_settings(settings) as source:
        for found in source.drop.sweep().ready:
            ...  # register found.recording_uuid with source_path=found.path
"""

from __future__ import annotations

from tenios_io.sftp.connect import SftpConnection, SftpTarget, connect_sftp, parse_sftp_url
from tenios_io.sftp.drop import DropFile, SftpDrop, SweepResult, is_temporary_name
from tenios_io.sftp.source import SftpSource

__all__ = [
    "DropFile",
    "SftpConnection",
    "SftpDrop",
    "SftpSource",
    "SftpTarget",
    "SweepResult",
    "connect_sftp",
    "is_temporary_name",
    "parse_sftp_url",
]
