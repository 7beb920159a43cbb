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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenios_io.sftp.connect import SftpConnection, SftpTarget, connect_sftp, parse_sftp_url
    from tenios_io.sftp.drop import DropFile, SftpDrop, SweepResult, is_temporary_name
    from tenios_io.sftp.source import SftpSource

#: Name → the module defining it, imported on first use (PEP 562): paramiko takes a
#: sizeable share of a run's start-up, and a run without a drop never needs it
#: (``tenios_io.sftp.naming`` is imported without it, by the sweep and the report).
_LAZY = {
    "SftpConnection": "tenios_io.sftp.connect",
    "SftpTarget": "tenios_io.sftp.connect",
    "connect_sftp": "tenios_io.sftp.connect",
    "parse_sftp_url": "tenios_io.sftp.connect",
    "DropFile": "tenios_io.sftp.drop",
    "SftpDrop": "tenios_io.sftp.drop",
    "SweepResult": "tenios_io.sftp.drop",
    "is_temporary_name": "tenios_io.sftp.drop",
    "SftpSource": "tenios_io.sftp.source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
