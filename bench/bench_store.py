"""Benchmark: ArchiveStore.archive against boto3 doing the bare upload (the peer), on moto.

    .venv/bin/python bench/bench_store.py [--small N] [--large-mib M]

Prints objects/s and MiB/s for both and the ratio ours/peer, and exits 1 if a
ratio is under its floor.  The peer does less — one PUT (``put_object``) for small
files and boto3's threaded transfer manager (``upload_file``) for a large one,
without conditional writes, read-back or metadata — so a ratio below 1 is the
price of the guarantees; the floors catch it growing.  moto is slow (~100 PUT/s on
these machines) and does not verify checksums, so absolute numbers mean little.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from tenios_io.checksum import HashingSpool, Spooled
from tenios_io.store import ArchiveStore, make_s3_client

MiB = 1024 * 1024
SMALL_SIZE = 64 * 1024
FLOOR_SMALL = 0.35  # archive = PUT + HEAD (read-back) vs one PUT
FLOOR_LARGE = 0.25  # sequential verified parts vs the threaded transfer manager


def spool(data_dir: Path, size: int, seed: int) -> tuple[HashingSpool, Spooled]:
    rng = random.Random(seed)
    hashing = HashingSpool(data_dir)
    left = size
    while left:
        chunk = rng.randbytes(min(MiB, left))
        hashing.write(chunk)
        left -= len(chunk)
    return hashing, hashing.finish()


def rate(label: str, count: int, size: int, seconds: float) -> float:
    print(f"  {label:<34} {count / seconds:8.1f} obj/s {count * size / MiB / seconds:8.1f} MiB/s")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=200, help="number of 64 KiB recordings")
    parser.add_argument("--large-mib", type=int, default=256, help="size of the large recording")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    client = make_s3_client(session=session, endpoint_url=f"http://{host}:{port}")
    client.create_bucket(Bucket="bench-ours")
    client.create_bucket(Bucket="bench-peer")
    store = ArchiveStore(client, "bench-ours", retention_mode="none")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)

        print(f"{args.small} recordings of {SMALL_SIZE // 1024} KiB:")
        spools = [spool(data_dir, SMALL_SIZE, i) for i in range(args.small)]
        started = time.perf_counter()
        for _, spooled in spools:
            store.archive(
                spooled,
                recording_uuid=str(uuid.uuid4()),
                call_uuid=None,
                source="bench",
                key_date=date(2024, 1, 1),
            )
        ours = rate("ArchiveStore.archive", args.small, SMALL_SIZE, time.perf_counter() - started)
        started = time.perf_counter()
        for i, (_, spooled) in enumerate(spools):
            with spooled.path.open("rb") as body:
                client.put_object(Bucket="bench-peer", Key=f"small/{i}", Body=body)
        peer = rate("peer: put_object", args.small, SMALL_SIZE, time.perf_counter() - started)
        ratio = peer / ours
        print(f"  ratio ours/peer {ratio:.2f} (floor {FLOOR_SMALL})")
        failed |= ratio < FLOOR_SMALL
        for hashing, _ in spools:
            hashing.close()

        size = args.large_mib * MiB
        print(f"one recording of {args.large_mib} MiB:")
        hashing, spooled = spool(data_dir, size, 99)
        started = time.perf_counter()
        store.archive(
            spooled,
            recording_uuid=str(uuid.uuid4()),
            call_uuid=None,
            source="bench",
            key_date=date(2024, 1, 1),
        )
        ours = rate("ArchiveStore.archive (16 MiB parts)", 1, size, time.perf_counter() - started)
        started = time.perf_counter()
        client.upload_file(str(spooled.path), "bench-peer", "large")
        peer = rate("peer: upload_file (transfer mgr)", 1, size, time.perf_counter() - started)
        ratio = peer / ours
        print(f"  ratio ours/peer {ratio:.2f} (floor {FLOOR_LARGE})")
        failed |= ratio < FLOOR_LARGE
        hashing.close()
    server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
