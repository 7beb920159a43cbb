"""`--help` and argument errors load nothing heavy (issue 27: `run --help` took 1.5 s
of CPU importing SQLAlchemy, boto3 and the whole pipeline).  Each case runs the real
entry point in a fresh interpreter and lists the heavy packages it loaded; the help of
every command in the tree (walked from the Click app, so a new command is covered the
day it is added) is checked one group per interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.unit.test_cli_help import _commands

HEAVY = ("sqlalchemy", "boto3", "botocore", "httpx", "prefect", "paramiko", "alembic", "moto")

PROBE = """
import sys, json
from tenios_io.cli import main
for line in sys.argv[1:]:
    try:
        main(json.loads(line))
    except SystemExit as exc:
        code = exc.code
heavy = {HEAVY!r}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}})))
"""


def _heavy_after(*invocations: list[str]) -> list[str]:
    """The heavy packages one interpreter loaded running every invocation in turn."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(HEAVY=HEAVY), *map(json.dumps, invocations)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


TREE = [path for path, _command in _commands()]  # the tree test_cli_help walks
GROUPS = sorted({p[0] for p in TREE if p})


def test_the_tree_is_walked_whole() -> None:
    assert len(TREE) > 40 and ("ledger", "show") in TREE and ("audit", "verify-bucket") in TREE


@pytest.mark.parametrize("group", ["", *GROUPS])
def test_every_help_imports_nothing_heavy(group: str) -> None:
    """`tenios-archive [GROUP [COMMAND]] --help` for every command of ``group`` in one
    interpreter; on a failure, each is probed alone to name the one that loads it."""
    paths = [p for p in TREE if (p[:1] == (group,) if group else p == ())]
    invocations = [[*p, "--help"] for p in paths]
    if _heavy_after(*invocations) == []:
        return
    culprits = {" ".join(i): _heavy_after(i) for i in invocations}
    assert {k: v for k, v in culprits.items() if v} == {}


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--help"),
        ("run", "nightly", "--concurrency", "0"),  # an argument error
        ("run", "backfill", "/no/such/file"),
        ("witness", "serve", "--help"),
        ("witness", "serve", "--key", "/no/such/key", "--state", "/tmp", "--log", "bad"),
        ("ledger", "show", "not-a-uuid", "extra"),
        ("ledger", "list", "--state", "nonsense"),
        ("audit", "verify", "--sample", "x"),
        ("simulator", "serve", "--port", "-1"),
        ("api", "start"),
        ("purge", "--nope"),
        ("demo", "--recordings", "0"),
    ],
    ids=lambda a: " ".join(a),
)
def test_help_and_argument_errors_import_nothing_heavy(args: tuple[str, ...]) -> None:
    assert _heavy_after(list(args)) == []
