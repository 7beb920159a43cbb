"""A newcomer follows the README (issue 12): the Install and "Getting started"
commands, exactly as the README writes them, run by the installed `tenios-archive`
console script in a child process against local peers (the TENIOS simulator, moto
server, a fresh SQLite file or PostgreSQL). Only the values of the `export` lines are
replaced by the peers' (same variable names), plus TENIOS_API_URL to reach the
simulator instead of api.tenios.com."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.acceptance.conftest import ArchiveWorld
from tests.fixtures.moto import FAKE_CREDENTIALS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
CONSOLE_SCRIPT = Path(sys.executable).parent / "tenios-archive"


def sh_block(heading: str) -> list[str]:
    """The lines of the first ```sh block after ``heading``."""
    section = README[README.index(heading) :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, heading
    return [line for line in block.group(1).splitlines() if line.strip()]


def section_lines(heading: str) -> list[str]:
    """Every line of every ```sh block in the section under ``heading`` (up to the next
    ``## `` heading), in order, without the list's indentation."""
    section = README[README.index(heading) :]
    following = section.find("\n## ", 1)
    section = section if following < 0 else section[:following]
    lines: list[str] = []
    for block in re.finditer(r"^([ \t]*)```sh\n(.*?)^[ \t]*```", section, re.DOTALL | re.M):
        indent = len(block.group(1))
        lines += [ln[indent:] for ln in block.group(2).splitlines() if ln.strip()]
    return lines


def command_of(line: str) -> list[str]:
    return shlex.split(line, comments=True)


#: The first hour's files live under /etc/tenios-archive in the README; the test keeps
#: them in its own folder (the only change to what the README writes, besides the
#: values of the `export` lines).
ETC = "/etc/tenios-archive/"


def test_the_readme_getting_started_works_as_written(world: ArchiveWorld, tmp_path: Path) -> None:
    lines = section_lines("## Getting started")
    exported = [
        command_of(line)[1].split("=", 1)[0] for line in lines if line.startswith("export ")
    ]
    assert exported == [
        "TENIOS_DATABASE_URL",
        "TENIOS_ACCESS_KEY",
        "TENIOS_S3_BUCKET",
        "AWS_PROFILE",
        "TENIOS_CUSTODY_KEY_FILE",
    ]
    etc = tmp_path / "etc"
    etc.mkdir()

    def localised(line: str) -> list[str]:
        return [arg.replace(ETC, f"{etc}/") for arg in command_of(line)]

    commands = [localised(line) for line in lines if line.startswith("tenios-archive ")]
    assert [c[1:3] for c in commands] == [
        ["store", "create-bucket"],
        ["audit", "keygen"],
        ["db", "upgrade"],
        ["ledger", "import"],
        ["run", "nightly"],
        ["ledger", "list"],
        ["ledger", "stats"],
        ["audit", "verify-chain"],
        ["audit", "verify"],
        ["audit", "verify-bucket"],
        ["audit", "report"],
    ]
    key_file = next(
        localised(line)[1].split("=", 1)[1]
        for line in lines
        if line.startswith("export TENIOS_CUSTODY_KEY_FILE=")
    )

    database = world.database_url
    if database.startswith("sqlite"):
        database = f"sqlite:///{tmp_path / 'tenios-archive.db'}"  # a newcomer's fresh file
    peers = {
        "TENIOS_DATABASE_URL": database,
        "TENIOS_ACCESS_KEY": world.env["TENIOS_ACCESS_KEY"],
        "TENIOS_S3_BUCKET": world.bucket,
        "TENIOS_API_URL": world.env["TENIOS_API_URL"],
        "TENIOS_SPOOL_DIR": world.env["TENIOS_SPOOL_DIR"],
        "TENIOS_CUSTODY_KEY_FILE": key_file,
        "AWS_ENDPOINT_URL_S3": world.env["AWS_ENDPOINT_URL_S3"],
        "PREFECT_API_URL": world.env["PREFECT_API_URL"],
        **FAKE_CREDENTIALS,  # stand in for AWS_PROFILE: boto3's chain reads either
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(peers)
    uuids = world.sim.seed(3)
    (tmp_path / "recordings.csv").write_text(
        "recording_uuid,call_uuid\n"
        + "".join(f"{u},{world.sim.recording(u).call_uuid}\n" for u in uuids)
    )

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        assert args[0] == "tenios-archive"
        return subprocess.run(
            [str(CONSOLE_SCRIPT), *args[1:]],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    install = [
        command_of(line) for line in sh_block("## Install") if line.startswith("tenios-archive")
    ]
    assert install == [["tenios-archive", "--help"]]
    helped = run(install[0])
    assert helped.returncode == 0 and "ledger" in helped.stdout and "Traceback" not in helped.stderr

    results = [run(c) for c in commands]
    bucket, keygen, upgrade, imported, nightly, failed, stats, chain, verified, audited, report = (
        results
    )
    assert bucket.returncode == 0, bucket.stderr  # the world's bucket has Object Lock already
    assert "with Object Lock and versioning" in bucket.stdout
    assert keygen.returncode == 0, keygen.stderr
    assert Path(key_file).is_file() and Path(f"{key_file}.pub").is_file()
    assert "audit keygen" not in upgrade.stdout  # the key is set: no hint
    assert upgrade.returncode == 0, upgrade.stderr
    assert imported.returncode == 0, imported.stderr
    assert "3 added" in imported.stdout
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    assert "archived" in nightly.stdout
    assert failed.returncode == 0, failed.stderr
    assert "archived: 3" in failed.stdout  # the counts line
    assert not any(u in failed.stdout for u in uuids)  # no recording failed
    assert stats.returncode == 0, stats.stderr
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The audit is clean: the auditor's bucket-only check and the report agree.
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "custody log OK" in audited.stdout and "UNSIGNED" not in audited.stdout
    assert report.returncode == 0, report.stdout + report.stderr
    assert "finding:" not in report.stdout + report.stderr
    assert (tmp_path / "report" / "report.html").is_file()
    assert "UNSIGNED" not in (tmp_path / "report" / "report.html").read_text()
    for result in results:
        assert "Traceback" not in result.stdout + result.stderr
    assert world.versions() and all(n == 1 for n in world.versions().values())
