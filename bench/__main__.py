"""`make bench`: run every benchmark; exit 1 if any ratio fell under its floor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

failed = []
for script in sorted(HERE.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
        failed.append(script.name)
print("benchmarks under their floor: " + (", ".join(failed) if failed else "none"))
sys.exit(1 if failed else 0)
