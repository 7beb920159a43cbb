"""Run `tenios-archive ARGS...` but stop dead at one crash point.

Usage: python crash_runner.py POINT MARKER_FILE -- ARGS...

When the pipeline reaches POINT the marker file is written and the process blocks
until the test kills its process group with SIGKILL (no cleanup of any kind runs).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tenios_io import crashpoints
from tenios_io.cli import main

point, marker = sys.argv[1], Path(sys.argv[2])
args = sys.argv[sys.argv.index("--") + 1 :]


def reached(name: str) -> None:
    if name == point:
        marker.write_text(name)
        threading.Event().wait()


crashpoints.reached = reached
main(args)
