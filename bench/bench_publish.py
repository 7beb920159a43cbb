"""Benchmark: publishing a large import's ``registered`` events to the custody log.

    .venv/bin/python bench/bench_publish.py [--registrations N] [--more M] [--sample S]

The first run after ``ledger import`` of N ids (default 1,000,000) writes the custody
log's tiles and entry bundles of every ``registered`` event and signs a checkpoint
(``write_checkpoint``: the chain verified since the last checkpoint, then
``publish_log``).  moto runs in its own process, as S3 would.  Printed:

- events/s of that checkpoint (target: 25,000/s, i.e. a million in 40 s), wall and
  this process's CPU, and moto's CPU;
- the floor: moto alone, bare boto3 ``put_object(IfNoneMatch="*")`` + ``head_object``
  of S objects of the log's size on the same number of threads as the log writer,
  measured before and after (alternating): the events/s moto lets any writer reach;
  the ratio ours/floor must stay above FLOOR;
- events per CPU second of this process: what the publisher would reach against an
  S3 that is not the limit;
- a run adding M events on top (only the right edge re-read): seconds, objects.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pipeline beside it

from bench_pipeline import free_port, wait_listening

from tenios_io.custody import merkle, signing
from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.records import NewRecording
from tenios_io.ledger.schema import upgrade
from tenios_io.publish.checkpoints import write_checkpoint
from tenios_io.publish.log import MAX_WRITERS
from tenios_io.store import ArchiveStore, make_s3_client

FLOOR = 0.7  # ours / moto alone, both in events/s
TARGET = 25_000
BUCKET = "bench-publish"


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def _moto_alone(client: object, count: int, round_no: int) -> float:
    """Objects/s for bare PUT + HEAD on MAX_WRITERS threads, bodies of the log's sizes
    (one bundle of 256 registered events ~75 KB for every 8 KB tile)."""
    bundle, tile = os.urandom(75_000), os.urandom(merkle.TILE_WIDTH * merkle.HASH_SIZE)

    def one(i: int) -> None:
        key = f"floor/{round_no}/{i}"
        client.put_object(  # type: ignore[attr-defined]
            Bucket=BUCKET, Key=key, Body=bundle if i % 2 else tile, IfNoneMatch="*"
        )
        client.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")  # type: ignore[attr-defined]

    started = time.perf_counter()
    with ThreadPoolExecutor(MAX_WRITERS) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registrations", type=int, default=1_000_000)
    parser.add_argument("--more", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=1_000)
    args = parser.parse_args()
    logging.getLogger("tenios_io").setLevel(logging.ERROR)

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, moto)
        moto_cpu = psutil.Process(moto.pid)
        session = boto3.session.Session(
            aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
        )
        client = make_s3_client(session=session, endpoint_url=f"http://127.0.0.1:{port}")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        store = ArchiveStore(client, BUCKET, retention_mode="none")
        signer = signing.generate("bench.example")
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            ledger = Ledger(create_ledger_engine(url), actor="bench")
            n = args.registrations
            started = time.perf_counter()
            ledger.import_recordings(NewRecording(str(uuid.uuid4())) for _ in range(n))
            print(f"imported {n:,} ids in {time.perf_counter() - started:.1f} s ({_load()})")

            before = _moto_alone(client, args.sample, 0)
            print(f"floor, moto alone (before): {before:,.0f} objects/s ({_load()})", flush=True)
            cpu0, moto0 = time.process_time(), sum(moto_cpu.cpu_times()[:2])
            started = time.perf_counter()
            checkpoint = write_checkpoint(ledger, store, signer=signer)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            server = sum(moto_cpu.cpu_times()[:2]) - moto0
            after = _moto_alone(client, args.sample, 1)
            print(f"floor, moto alone (after): {after:,.0f} objects/s ({_load()})")
            size = checkpoint.last_seq
            objects = 2 * (size // merkle.TILE_WIDTH) + 3  # bundles, level-0 tiles, the rest
            floor_rate = (before + after) / 2 * size / objects
            ours = size / wall
            ratio = ours / floor_rate
            print(
                f"write_checkpoint over {size:,} events (~{objects:,} objects): {wall:.1f} s = "
                f"{ours:,.0f} events/s (target {TARGET:,}); this process {cpu:.1f} s CPU "
                f"({size / cpu:,.0f} events per CPU second), moto {server:.1f} s CPU"
            )
            print(
                f"  moto alone allows {floor_rate:,.0f} events/s on {MAX_WRITERS} threads: "
                f"ratio {ratio:.2f} (floor {FLOOR})"
            )
            ledger.import_recordings(NewRecording(str(uuid.uuid4())) for _ in range(args.more))
            started = time.perf_counter()
            more = write_checkpoint(ledger, store, signer=signer)
            print(
                f"a run adding {more.last_seq - size:,} events on top: "
                f"{time.perf_counter() - started:.2f} s (only the right edge re-read)"
            )
            ledger.engine.dispose()
    finally:
        moto.terminate()
        moto.wait(30)
    return 1 if ratio < FLOOR else 0


if __name__ == "__main__":
    sys.exit(main())
