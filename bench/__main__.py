"""`make bench` / `python -m bench [NAME ...] [-- ARGS]`: run the benchmarks.

    python -m bench                 # every bench/bench_*.py
    python -m bench pipeline rclone # bench_pipeline.py, then bench_rclone.py
    python -m bench pipeline -- --only 256k

Each prints its own figures and ratios; exit 1 if any ratio fell under its floor.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    names, extra = argv, []
    if "--" in argv:
        at = argv.index("--")
        names, extra = argv[:at], argv[at + 1 :]
    known = {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    failed = []
    for name in names or list(known):
        script = known[name]
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), *extra], check=False).returncode != 0:
            failed.append(script.name)
    print("benchmarks under their floor: " + (", ".join(failed) if failed else "none"))
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))
