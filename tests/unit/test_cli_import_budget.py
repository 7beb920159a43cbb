"""`--help` and argument errors load nothing heavy (issue 27: `run --help` took 1.5 s
of CPU importing SQLAlchemy, boto3 and the whole pipeline).  Each case runs the real
entry point in a fresh interpreter and lists the heavy packages it loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "boto3", "botocore", "httpx", "prefect", "paramiko", "alembic", "moto")

PROBE = """
import sys
from tenios_io.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = {HEAVY!r}
import json
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}})))
"""


def _heavy_after(*args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(HEAVY=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--help"),
        ("run", "nightly", "--help"),
        ("run", "backfill", "--help"),
        ("run", "nightly", "--concurrency", "0"),  # an argument error
        ("run", "backfill", "/no/such/file"),
        ("witness", "serve", "--help"),
        ("witness", "serve", "--key", "/no/such/key", "--state", "/tmp", "--log", "bad"),
    ],
    ids=lambda a: " ".join(a),
)
def test_help_and_argument_errors_import_nothing_heavy(args: tuple[str, ...]) -> None:
    assert _heavy_after(*args) == []
