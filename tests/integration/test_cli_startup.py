"""Light commands import only what they use (issue 12 item 7): `ledger list` reads a
real SQLite ledger without Prefect, boto3, paramiko, Alembic or moto.  How long that
takes is measured, not asserted (README, "Running")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tenios_io.ledger.schema import upgrade

PROBE = """
import sys
from tenios_io.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    print("exit", exc.code)
heavy = ("prefect", "boto3", "botocore", "paramiko", "alembic", "moto", "mutagen", "httpx")
print(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}))
"""


def test_ledger_list_imports_no_heavy_library(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    env = {"TENIOS_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    for args in (["ledger", "list"], ["ledger", "list", "--state", "failed"]):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        ).stdout.splitlines()
        assert out[-2] in ("exit 0", "exit None"), out
        assert out[-1] == "[]", (args, out[-1])
