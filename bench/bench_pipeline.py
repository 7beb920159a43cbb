"""Benchmark: `tenios-archive run nightly` against the raw-transfer floor (issue 13).

    python -m bench pipeline          # or: .venv/bin/python bench/bench_pipeline.py
        [--only 256k|32k|8m] [--concurrency 8] [--rounds N]

The floor is plain threads doing only the transfer: fetch a recording from the
simulator over HTTP → SHA-256 → ``put_object(IfNoneMatch="*", ChecksumSHA256=…)`` →
``head_object(ChecksumMode="ENABLED")``.  The pipeline is `run nightly` as an
operator runs it — a separate process, no Prefect API (in-process loop), a SQLite
ledger — doing everything the floor does plus spooling, validation, retention, the
custody metadata in the same PUT, a custody manifest per batch, custody events and
the ledger.  Both use the same peers (the simulator and
a moto server, each in its own process) and the same concurrency.

A third contender, the design floor, is the floor making exactly the S3 requests the
design asks for and nothing else (no spool, validation or ledger): the PUT with the
custody metadata and Object Lock retention into a locked bucket, the HEAD of that
version, and per batch a custody manifest PUT under the lock and its read-back.  Its
ratio to the floor is what the peers' cost for those requests leaves to any
implementation of the design on this machine (printed, not a pass/fail figure).

For each recording size, two sizes of work give the marginal (steady-state) rate —
(n2 - n1) / (t2 - t1) — so start-up is not counted in it; the fixed cost is printed
separately as the time from starting `run nightly` to its first archived recording
(the ledger's ``archived_at`` of the first recording).  Floor and pipeline runs
alternate, ``--rounds`` times each (default: twice at 256 KiB, the figure with a floor,
once for the others, so that the whole bench takes about 2-3 minutes on a quiet
machine), and the best time of each counts.  Prints the ratios
pipeline/floor; exits 1 when the 256 KiB steady-state ratio is under FLOOR or the
fixed cost over MAX_FIXED_SECONDS.  Figures from a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import sqlalchemy as sa
from botocore.config import Config

from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.ledger.tables import recordings
from tenios_io.store.metadata import custody_metadata

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
KiB = 1024
MiB = 1024 * KiB
BYTES_PER_SECOND = 16_000  # the simulator's 8 kHz 16-bit mono WAV
FLOOR = 0.9  # steady state at 256 KiB, pipeline/floor
MAX_FIXED_SECONDS = 3.0
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}

#: size label → (recording bytes, (n1, n2) recordings); 8 MiB keeps moto's memory small.
CASES = {
    "256k": (256 * KiB, (100, 500)),
    "32k": (32 * KiB, (100, 500)),
    "8m": (8 * MiB, (8, 32)),
}

SIMULATOR = """
import sys
from pathlib import Path
from tenios_io.simulator import Simulator
from tenios_io.simulator.server import bind_socket, serve_forever
seconds, count, out = float(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
sim = Simulator(access_key=sys.argv[4], seed=7)
uuids = sim.seed(count, seconds=seconds)
sock = bind_socket("127.0.0.1", 0)
(out / "uuids").write_text("\\n".join(uuids))
(out / "port.tmp").write_text(str(sock.getsockname()[1]))
(out / "port.tmp").rename(out / "port")
serve_forever(sim, sock)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never appeared (exit {proc.returncode})")
        time.sleep(0.05)


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.05)


@dataclass
class Peers:
    api_url: str
    s3_url: str
    uuids: list[str]
    tmp: Path

    def s3(self, connections: int = 10) -> object:
        """A client with ``connections`` in its pool (one per thread that uses it)."""
        config = Config(max_pool_connections=max(10, connections))
        return boto3.client("s3", endpoint_url=self.s3_url, config=config, **_boto_args())

    def bucket(self, locked: bool) -> str:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        s3 = self.s3()
        if locked:
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)  # type: ignore[attr-defined]
        else:
            s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


def _boto_args() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@contextmanager
def peers(size: int, count: int) -> Iterator[Peers]:
    """The simulator (``count`` recordings of ``size`` bytes) and a moto server, each
    in its own process."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = (size - 44) / BYTES_PER_SECOND
    sim = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR, str(seconds), str(count), str(tmp), KEY],
        cwd=ROOT,
    )
    try:
        wait_listening(port, moto)
        wait_for(tmp / "port", sim)
        uuids = (tmp / "uuids").read_text().split()
        api = f"http://127.0.0.1:{(tmp / 'port').read_text()}"
        yield Peers(api, f"http://127.0.0.1:{port}", uuids, tmp)
    finally:
        for proc in (sim, moto):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def floor(p: Peers, uuids: list[str], concurrency: int) -> float:
    """Seconds for plain threads to fetch → hash → conditional PUT → HEAD ``uuids``."""
    bucket = p.bucket(locked=False)
    s3 = p.s3(concurrency)
    http = httpx.Client(
        base_url=p.api_url, limits=httpx.Limits(max_connections=concurrency), timeout=60
    )

    def one(recording_uuid: str) -> None:
        body = {"access_key": KEY, "recording_uuid": recording_uuid}
        with http.stream("POST", "/record-call/retrieve", json=body) as response:
            response.raise_for_status()
            data = b"".join(response.iter_raw(MiB))
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        key = f"floor/{recording_uuid}.wav"
        s3.put_object(  # type: ignore[attr-defined]
            Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", ChecksumSHA256=digest
        )
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")  # type: ignore[attr-defined]
        assert head["ContentLength"] == len(data)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, uuids))
    seconds = time.perf_counter() - started
    http.close()
    return seconds


def design_floor(p: Peers, uuids: list[str], concurrency: int, batch_size: int) -> float:
    """Seconds for plain threads to make the S3 requests the design asks for, and
    nothing else (no spool, validation or ledger): per recording the floor's fetch and
    SHA-256, the PUT with the custody metadata and the Object Lock retention into a
    locked bucket, the HEAD of that version; per batch of ``batch_size`` (one thread
    works a batch, as `run nightly` does) a custody manifest of one JSON line per
    recording, PUT under the lock and read back.  What the peers cost for these
    requests bounds every implementation of the design on this machine."""
    bucket = p.bucket(locked=True)
    s3 = p.s3()
    http = httpx.Client(
        base_url=p.api_url, limits=httpx.Limits(max_connections=concurrency), timeout=60
    )
    retain = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2557)
    lock = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": retain}
    audio = {"codec": "pcm", "channels": "1", "sample_rate": "8000", "duration_seconds": "16.381"}

    def one(recording_uuid: str) -> str:
        body = {"access_key": KEY, "recording_uuid": recording_uuid}
        with http.stream("POST", "/record-call/retrieve", json=body) as response:
            response.raise_for_status()
            data = b"".join(response.iter_raw(MiB))
        sha = hashlib.sha256(data)
        key = f"design/{recording_uuid}.wav"
        metadata = custody_metadata(
            recording_uuid=recording_uuid,
            call_uuid=str(uuid.uuid4()),
            sha256=sha.hexdigest(),
            size=len(data),
            source="api",
            fetched_at=datetime.now(UTC).isoformat(),
            tool_version="bench",
            audio=audio,
        )
        put = s3.put_object(  # type: ignore[attr-defined]
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType="audio/wav",
            Metadata=metadata,
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(sha.digest()).decode(),
            **lock,
        )
        head = s3.head_object(  # type: ignore[attr-defined]
            Bucket=bucket, Key=key, VersionId=put["VersionId"], ChecksumMode="ENABLED"
        )
        assert head["ContentLength"] == len(data)
        return json.dumps(
            {
                "key": key,
                "version_id": head["VersionId"],
                "sha256": sha.hexdigest(),
                "size": len(data),
                "retention_mode": "GOVERNANCE",
                "retain_until": retain.isoformat(),
                "legal_hold": False,
                "events": [hashlib.sha256(f"{key}{i}".encode()).hexdigest() for i in range(6)],
            },
            sort_keys=True,
        )

    def batch(number: int, keys: list[str]) -> None:
        document = ("\n".join(one(k) for k in keys) + "\n").encode()
        digest = hashlib.sha256(document).digest()
        key = f"_custody/manifests/design-{number:06d}.jsonl"
        put = s3.put_object(  # type: ignore[attr-defined]
            Bucket=bucket,
            Key=key,
            Body=document,
            ContentType="application/x-ndjson",
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(digest).decode(),
            **lock,
        )
        s3.head_object(Bucket=bucket, Key=key, VersionId=put["VersionId"], ChecksumMode="ENABLED")  # type: ignore[attr-defined]

    batches = [uuids[i : i + batch_size] for i in range(0, len(uuids), batch_size)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(batch, range(len(batches)), batches))
    seconds = time.perf_counter() - started
    http.close()
    return seconds


@dataclass
class PipelineRun:
    seconds: float
    first_archived: float
    """Seconds from starting the process to its first archived recording."""


def pipeline(
    p: Peers, uuids: list[str], concurrency: int, batch_size: int, *options: str
) -> PipelineRun:
    """`tenios-archive run nightly` over ``uuids`` (a fresh ledger and bucket), with
    ``options`` (e.g. ``--in-flight 256``) after the concurrency and batch size."""
    work = p.tmp / f"run-{uuid.uuid4().hex[:8]}"
    (work / "spool").mkdir(parents=True)
    url = f"sqlite:///{work / 'ledger.db'}"
    upgrade(url)
    ledger = Ledger(create_ledger_engine(url), actor="bench")
    ledger.register([NewRecording(u) for u in uuids])
    ledger.integrate_all()
    ledger.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "PREFECT_API"))}
    env.update(
        CREDENTIALS,
        AWS_ENDPOINT_URL_S3=p.s3_url,
        TENIOS_DATABASE_URL=url,
        TENIOS_API_URL=p.api_url,
        TENIOS_ACCESS_KEY=KEY,
        TENIOS_S3_BUCKET=p.bucket(locked=True),
        TENIOS_SPOOL_DIR=str(work / "spool"),
        PREFECT_HOME=str(work / "prefect"),
        PYTHONPATH=str(ROOT),
    )
    command = [sys.executable, "-m", "tenios_io.cli", "run", "nightly"]
    profile = os.environ.get("BENCH_PIPELINE_PROFILE")  # a path prefix: profile each run
    if profile:
        report = f"{profile}-{len(uuids)}-{uuid.uuid4().hex[:6]}.txt"
        command[1:3] = ["-m", "pyinstrument", "-r", "text", "-o", report, "-m", "tenios_io.cli"]
    command += ["--concurrency", str(concurrency), "--batch-size", str(batch_size), *options]
    wall_start = datetime.now(UTC)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"run nightly exited {done.returncode}:\n{done.stdout}{done.stderr}")
    engine = create_ledger_engine(url)
    with engine.connect() as conn:
        first, archived = conn.execute(
            sa.select(sa.func.min(recordings.c.archived_at), sa.func.count()).where(
                recordings.c.state == "archived"
            )
        ).one()
    engine.dispose()
    if archived != len(uuids):
        raise RuntimeError(f"{archived} of {len(uuids)} archived")
    return PipelineRun(
        seconds, (first.replace(tzinfo=first.tzinfo or UTC) - wall_start).total_seconds()
    )


def case(label: str, concurrency: int, batch_size: int, rounds: int) -> tuple[float, float]:
    """Floor and pipeline alternately, ``rounds`` times each size of work; the best
    time of each (a busy machine only ever makes a run slower)."""
    size, (n1, n2) = CASES[label]
    # Batches small enough that the smaller run fills every slot of the window: with 8
    # recordings of 8 MiB in one batch of 10, one thread did all of them and the
    # marginal rate came out absurd (the 32-recording run took no longer).
    batch_size = max(1, min(batch_size, n1 // concurrency))
    print(
        f"{label}: recordings of {size / KiB:,.0f} KiB, {n1} vs {n2}, concurrency "
        f"{concurrency}, batches of {batch_size}"
    )
    floor_s = {n1: float("inf"), n2: float("inf")}
    design_s = {n1: float("inf"), n2: float("inf")}
    ours: dict[int, PipelineRun] = {}
    with peers(size, 2 * n2) as p:
        floor(p, p.uuids[n2 : n2 + min(n1, 20)], concurrency)  # warm the peers up
        for _ in range(rounds):
            for n in (n1, n2):
                floor_s[n] = min(floor_s[n], floor(p, p.uuids[:n], concurrency))
                design_s[n] = min(
                    design_s[n], design_floor(p, p.uuids[:n], concurrency, batch_size)
                )
                run = pipeline(p, p.uuids[:n], concurrency, batch_size)
                if n not in ours or run.seconds < ours[n].seconds:
                    ours[n] = run
    f1, f2 = floor_s[n1], floor_s[n2]
    r1, r2 = ours[n1], ours[n2]
    first = min(r1.first_archived, r2.first_archived)
    if f2 <= f1 or r2.seconds <= r1.seconds:
        # A busy machine made the smaller run the slower one: no marginal rate to compare.
        print(
            f"  floor {n1}: {f1:.2f} s, {n2}: {f2:.2f} s; pipeline {n1}: {r1.seconds:.2f} s, "
            f"{n2}: {r2.seconds:.2f} s; no steady-state ratio: the machine was too busy "
            f"(run again, or with --rounds 3); time to the first archived recording "
            f"{first:.2f} s (no Prefect server)"
        )
        return math.nan, first
    floor_rate = (n2 - n1) / (f2 - f1)
    ours_rate = (n2 - n1) / (r2.seconds - r1.seconds)
    ratio = ours_rate / floor_rate
    mib = size / MiB
    print(
        f"  floor     {n1}: {f1:6.2f} s  {n2}: {f2:6.2f} s  steady {floor_rate:7.1f} rec/s "
        f"{floor_rate * mib:6.1f} MiB/s  fixed {f2 - n2 / floor_rate:5.2f} s"
    )
    d1, d2 = design_s[n1], design_s[n2]
    if d2 > d1:
        design_rate = (n2 - n1) / (d2 - d1)
        print(
            f"  design    {n1}: {d1:6.2f} s  {n2}: {d2:6.2f} s  steady {design_rate:7.1f} rec/s "
            f"{design_rate * mib:6.1f} MiB/s  ({design_rate / floor_rate:.2f} of the floor: "
            "the design's S3 requests alone, the most any implementation reaches here)"
        )
    print(
        f"  pipeline  {n1}: {r1.seconds:6.2f} s  {n2}: {r2.seconds:6.2f} s  steady "
        f"{ours_rate:7.1f} rec/s {ours_rate * mib:6.1f} MiB/s  fixed "
        f"{r2.seconds - n2 / ours_rate:5.2f} s"
    )
    print(
        f"  ratio pipeline/floor (steady state) {ratio:.2f}; time to the first archived "
        f"recording {first:.2f} s (no Prefect server)"
    )
    return ratio, first


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10,
        help="recordings per batch, at most (each case lowers it so that its smaller run "
        "fills the window: 1 at 8 MiB)",
    )
    parser.add_argument(
        "--rounds", type=int, help="best of this many runs each (default 2 at 256k, else 1)"
    )
    args = parser.parse_args()
    failed = False
    for label in args.only or ["256k", "32k", "8m"]:
        rounds = args.rounds or (2 if label == "256k" else 1)
        ratio, first = case(label, args.concurrency, args.batch_size, rounds)
        if label == "256k":
            failed |= not ratio >= FLOOR or first > MAX_FIXED_SECONDS  # NaN: not measured
            print(f"  floors: steady state ≥ {FLOOR}, first archived ≤ {MAX_FIXED_SECONDS} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
