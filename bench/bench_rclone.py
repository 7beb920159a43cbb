"""Benchmark: `tenios-archive run nightly` sweeping an SFTP drop against `rclone copy` of it.

    .venv/bin/python bench/bench_rclone.py [--only small|large] [--database-url URL]

Both move the same drop of WAV recordings (the simulator's audio) from a local OpenSSH
sshd into the same moto server, 8 at a time (`rclone copy --transfers 8`; `run nightly
--concurrency 8`), each as a fresh process whose wall time is measured:

- ``rclone``: `rclone copy` (Debian: ``apt-get install rclone``), SFTP remote → S3
  remote, nothing else; whether it verified checksums is read from its own log (``-vv``:
  a ``md5 = … OK`` line per file; over SFTP it can only hash when the server runs
  ``md5sum`` as a shell command, otherwise it compares sizes only);
- ``ours``: `run nightly` — sweep the drop, fetch each file, hash it (SHA-256), validate
  the WAV, upload with a conditional write, read it back to verify, record every step in
  the ledger (a SQLite file unless ``--database-url``), with TENIOS_SFTP_SETTLE_SECONDS=0
  so the first sweep finds every file settled.  A second run, with nothing left to
  archive, is timed too: start-up plus a sweep of the drop.

rclone runs a second time with ``--sftp-disable-hashcheck``: what it does against a server
that runs no shell commands (sizes compared only), reported for reference.

Prints the wall times and rclone/ours (≥ 1.0: ours is at least as fast), and exits 1 if
the 200 x 1 MiB ratio is under its floor; 20 x 50 MiB is reported only.  moto is slow
and the machine may be shared: the figures are noisy.  BENCH_RCLONE_PROFILER runs each
`run nightly` under a profiler (see ``PROFILER``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures.sshd

import boto3
from moto.server import ThreadedMotoServer

from tenios_io.simulator.catalogue import SAMPLE_RATE, SAMPLE_WIDTH, AudioSpec
from tests.fixtures.sshd import SSHD, SftpServer, make_keys, running_server

MiB = 2**20
TRANSFERS = 8
CASES = {"small": (200, 1), "large": (20, 50)}  # count, MiB each
FLOORS = {"small": 1.0}  # rclone's wall time / ours
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
REGION = "us-east-1"
TENIOS = Path(sys.executable).with_name("tenios-archive")
PROFILER = "BENCH_RCLONE_PROFILER"
"""A command `run nightly` runs under, ``{run}`` naming the run, e.g. ``py-spy record
--threads --idle --format raw -o /tmp/{run}.txt --`` (all threads, unlike pyinstrument)."""
INSTALL = "rclone is not installed: apt-get install -y rclone (Debian/Ubuntu), or see rclone.org"


@dataclass
class Timed:
    seconds: float
    output: str
    cpu_seconds: float
    """User + system CPU of the process and its children (not the sshd's or moto's)."""


def run(command: list[str], env: dict[str, str], what: str) -> Timed:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{what} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return Timed(seconds, done.stdout + done.stderr, cpu)


def batch_size(count: int) -> int:
    """Small enough that the sliding window keeps all 8 slots busy to the end (about
    four batches per slot), as rclone hands out single files."""
    return max(1, count // (TRANSFERS * 4))


def profiler(run: str) -> list[str]:
    return [part.replace("{run}", run) for part in os.environ.get(PROFILER, "").split()]


def wall(label: str, timed: Timed, total: int) -> None:
    print(
        f"  {label:<22} {timed.seconds:7.2f} s  {total / MiB / timed.seconds:7.1f} MiB/s"
        f"  CPU {timed.cpu_seconds:6.2f} s"
    )


def fill_drop(drop_dir: Path, count: int, mib: int) -> int:
    """``count`` WAVs of about ``mib`` MiB each, named by a recording UUID; total bytes."""
    total = 0
    for seed in range(count):
        spec = AudioSpec(seed=seed, seconds=mib * MiB / (SAMPLE_RATE * SAMPLE_WIDTH))
        with (drop_dir / f"{uuid.UUID(int=seed + 1, version=4)}.wav").open("wb") as out:
            for chunk in spec.chunks(MiB):
                out.write(chunk)
        total += spec.size
    return total


def rclone_env(server: SftpServer, endpoint: str, config: Path) -> dict[str, str]:
    """Two remotes from the environment only (no user rclone.conf): ``drop`` and ``moto``."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config.parent),
        "RCLONE_CONFIG": str(config),
        "RCLONE_CONFIG_DROP_TYPE": "sftp",
        "RCLONE_CONFIG_DROP_HOST": server.host,
        "RCLONE_CONFIG_DROP_PORT": str(server.port),
        "RCLONE_CONFIG_DROP_USER": server.user,
        "RCLONE_CONFIG_DROP_KEY_FILE": str(server.key_file),
        "RCLONE_CONFIG_DROP_KNOWN_HOSTS_FILE": str(server.known_hosts),
        "RCLONE_CONFIG_MOTO_TYPE": "s3",
        "RCLONE_CONFIG_MOTO_PROVIDER": "Other",
        "RCLONE_CONFIG_MOTO_ENDPOINT": endpoint,
        "RCLONE_CONFIG_MOTO_REGION": REGION,
        "RCLONE_CONFIG_MOTO_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def ours_env(
    server: SftpServer, endpoint: str, bucket: str, database_url: str, tmp: Path
) -> dict[str, str]:
    spool = tmp / "spool"
    spool.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "PREFECT_API"))}
    env.update(CREDENTIALS)
    env.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "TENIOS_DATABASE_URL": database_url,
            "TENIOS_S3_BUCKET": bucket,
            "TENIOS_RETENTION_MODE": "none",
            "TENIOS_ACCESS_KEY": "bench-unused",
            "TENIOS_SOURCE_ORDER": "sftp",
            "TENIOS_SFTP_URL": server.url(),
            "TENIOS_SFTP_KEY_FILE": str(server.key_file),
            "TENIOS_SFTP_KNOWN_HOSTS": str(server.known_hosts),
            "TENIOS_SFTP_SETTLE_SECONDS": "0",
            "TENIOS_SFTP_AFTER": "keep",
            "TENIOS_SPOOL_DIR": str(spool),
        }
    )
    return env


def rclone(server: SftpServer, endpoint: str, config: Path, bucket: str, *extra: str) -> Timed:
    """`rclone copy` of the whole drop into ``bucket``/recordings, logging each check."""
    return run(
        [
            "rclone", "copy", f"drop:{server.drop_dir}", f"moto:{bucket}/recordings",
            "--transfers", str(TRANSFERS), "--checkers", str(TRANSFERS), "-vv", *extra,
        ],
        rclone_env(server, endpoint, config),
        "rclone copy",
    )  # fmt: skip


def checked(copy: Timed, count: int) -> str:
    """What rclone's ``-vv`` log says it checked after each transfer."""
    verified = len(re.findall(r": md5 = [0-9a-f]{32} OK", copy.output))
    if verified == 0:
        return f"rclone compared sizes only ({count} files: no hash from the SFTP side)"
    return f"rclone verified the MD5 of {verified} of {count} files (md5sum run on the sshd)"


def objects_in(client: object, bucket: str) -> tuple[int, int]:
    """(count, bytes) of the ``.wav`` objects in ``bucket``."""
    count = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):  # type: ignore[attr-defined]
        for item in page.get("Contents", []):
            if item["Key"].endswith(".wav"):
                count += 1
                size += item["Size"]
    return count, size


def bench_case(
    name: str, count: int, mib: int, endpoint: str, client: object, database: str | None
) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-rclone-") as tmp_name:
        tmp = Path(tmp_name)
        keys = make_keys(tmp / "keys")
        with running_server("openssh", keys, tmp / "sftp") as server:
            total = fill_drop(server.drop_dir, count, mib)
            print(
                f"{count} x {mib} MiB ({total / MiB:.0f} MiB), {TRANSFERS} at a time:", flush=True
            )
            bucket_rclone, bucket_ours = (
                f"rclone-{name}-{uuid.uuid4().hex[:8]}",
                f"ours-{name}-{uuid.uuid4().hex[:8]}",
            )
            bucket_size_only = f"rclone-size-only-{name}-{uuid.uuid4().hex[:8]}"
            for bucket in (bucket_rclone, bucket_size_only, bucket_ours):
                client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]

            config = tmp / "rclone" / "rclone.conf"
            config.parent.mkdir()
            config.touch()
            copy = rclone(server, endpoint, config, bucket_rclone)
            wall("rclone copy", copy, total)
            print(f"    {checked(copy, count)}")
            size_only = rclone(
                server, endpoint, config, bucket_size_only, "--sftp-disable-hashcheck"
            )
            wall("rclone, sizes only", size_only, total)
            print(f"    {checked(size_only, count)} (--sftp-disable-hashcheck)")

            database_url = database or f"sqlite:///{tmp / 'ledger.db'}"
            env = ours_env(server, endpoint, bucket_ours, database_url, tmp)
            if database is not None:
                wipe_ledger(database_url)
            run([str(TENIOS), "db", "upgrade"], env, "db upgrade")
            nightly = [
                str(TENIOS), "run", "nightly", "--concurrency", str(TRANSFERS),
                "--batch-size", str(batch_size(count)),
            ]  # fmt: skip
            ours = run([*profiler(f"{name}-nightly"), *nightly], env, "run nightly")
            wall("run nightly", ours, total)
            again = run([*profiler(f"{name}-again"), *nightly], env, "run nightly again")
            print(
                f"  {'run nightly again':<22} {again.seconds:7.2f} s  CPU {again.cpu_seconds:.2f} s"
                "  (nothing left to archive)"
            )

            for label, bucket in (
                ("rclone", bucket_rclone),
                ("rclone, sizes only", bucket_size_only),
                ("ours", bucket_ours),
            ):
                got = objects_in(client, bucket)
                if got != (count, total):
                    raise SystemExit(f"{label}: bucket holds {got}, expected ({count}, {total})")
            ratio = copy.seconds / ours.seconds
            floor = FLOORS.get(name)
            verdict = (
                "" if floor is None else ("  ok" if ratio >= floor else f"  BELOW FLOOR {floor}")
            )
            print(f"  rclone/ours wall time  {ratio:5.2f}{verdict}")
            print(f"  rclone sizes only/ours {size_only.seconds / ours.seconds:5.2f}", flush=True)
            return ratio


def wipe_ledger(database_url: str) -> None:
    """A PostgreSQL ledger given with --database-url starts empty (every table dropped)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(CASES), help="run one case only")
    parser.add_argument(
        "--database-url",
        help="ledger for `run nightly` (a throwaway PostgreSQL database: it is wiped); "
        "default a SQLite file",
    )
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        print(INSTALL)
        return 1
    if not Path(SSHD).exists():
        print(f"OpenSSH's sshd ({SSHD}) is not installed: .ci/install-system-deps")
        return 1

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    session = boto3.session.Session(
        region_name=REGION, **{k.lower(): v for k, v in CREDENTIALS.items()}
    )
    client = session.client("s3", endpoint_url=endpoint)
    version = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout.split(
        "\n"
    )[0]
    load = os.getloadavg()[0]
    print(f"{version}, OpenSSH sshd, moto {endpoint}, user {getpass.getuser()}, load {load:.1f}")
    failed = False
    try:
        for name, (count, mib) in CASES.items():
            if args.only and name != args.only:
                continue
            ratio = bench_case(name, count, mib, endpoint, client, args.database_url)
            failed |= ratio < FLOORS.get(name, -math.inf)
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
