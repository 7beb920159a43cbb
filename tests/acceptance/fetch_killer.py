"""Run `tenios-archive ARGS...`, but the fetch of one recording kills the process.

Usage: python fetch_killer.py RECORDING_UUID -- ARGS...

When the TENIOS API fetch of RECORDING_UUID begins, the process sends SIGKILL to its
own process group, as the kernel's OOM killer would: no cleanup of any kind runs.
The patch sits on the API client (not a crash point in archive.py) because only this
one recording's fetch must kill, and a crash point knows no recording.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from tenios_io.api import TeniosClient
from tenios_io.cli import main

killer = sys.argv[1].lower()
args = sys.argv[sys.argv.index("--") + 1 :]
retrieve = TeniosClient.retrieve_recording


def retrieve_or_die(self: TeniosClient, recording_uuid: str, sink: Any) -> Any:
    if recording_uuid.lower() == killer:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    return retrieve(self, recording_uuid, sink)


TeniosClient.retrieve_recording = retrieve_or_die  # type: ignore[method-assign]
main(args)
