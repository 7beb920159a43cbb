"""Run `tenios-archive ARGS...` but pause once at one crash point.

Usage: python pause_runner.py POINT MARKER_FILE GO_FILE -- ARGS...

The first time the run reaches POINT the marker file is written and the run waits
until the go file exists, then carries on: a test sends a signal in between, at a
known step of the run, and watches what the run does about it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tenios_io import crashpoints
from tenios_io.cli import main

point, marker, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
args = sys.argv[sys.argv.index("--") + 1 :]


def reached(name: str) -> None:
    if name == point and not marker.exists():
        marker.write_text(name)
        while not go.exists():
            time.sleep(0.01)  # the test's go-ahead (signals are handled meanwhile)


crashpoints.reached = reached
main(args)
