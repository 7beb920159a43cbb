"""Benchmark: ArchiveStore.archive against boto3 doing the bare upload (the peer), on moto.

    .venv/bin/python bench/bench_store.py [--small N] [--large-mib M]
    .venv/bin/python bench/bench_store.py --cpu N [--threads T] [--rounds R]

Prints objects/s and MiB/s for both and the ratio ours/peer, and exits 1 if a
ratio is under its floor.  The peer does less — one PUT (``put_object``) for small
files and boto3's threaded transfer manager (``upload_file``) for a large one,
without conditional writes, read-back or metadata — so a ratio below 1 is the
price of the guarantees; the floors catch it growing.  moto is slow (~100 PUT/s on
these machines) and does not verify checksums, so absolute numbers mean little.

``--cpu N`` instead measures what the S3 client path costs this process: N spooled
256 KiB recordings archived by ArchiveWriter.archive on T threads (8) into an Object
Lock bucket (governance retention, as ``run nightly`` writes), against a moto server
in its own process, so the process's CPU time is the client's alone.  It prints CPU
ms per recording (best of R rounds, after a warm-up); compare runs of it, alternately,
before and after a change.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import boto3
import psutil
from moto.server import ThreadedMotoServer

from tenios_io.recording.spool import HashingSpool, Spooled
from tenios_io.store import ArchiveStore, make_s3_client
from tenios_io.store.client import DEFAULT_POOL

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


CPU_SIZE = 256 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server never listened on {port}") from None
            time.sleep(0.05)


def cpu_case(count: int, threads: int, rounds: int) -> None:
    """CPU ms of this process per recording archived, moto in its own process."""
    port = _free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, moto)
        server_process = psutil.Process(moto.pid)
        session = boto3.session.Session(
            aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
        )
        client = make_s3_client(
            session=session,
            endpoint_url=f"http://127.0.0.1:{port}",
            max_pool_connections=max(DEFAULT_POOL, threads + 2),
        )
        with tempfile.TemporaryDirectory() as tmp:
            spools = [spool(Path(tmp), CPU_SIZE, i) for i in range(count)]
            print(
                f"{count} recordings of {CPU_SIZE // 1024} KiB, ArchiveWriter.archive on "
                f"{threads} threads, Object Lock bucket (governance), moto in its own process:"
            )
            best = float("inf")
            for round_ in range(rounds + 1):  # the first round warms up (models, pools)
                name = f"bench-cpu-{uuid.uuid4().hex[:8]}"
                client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
                store = ArchiveStore(client, name, retention_mode="governance")

                def one(spooled: Spooled, store: ArchiveStore = store) -> None:
                    store.writer.archive(
                        spooled,
                        recording_uuid=str(uuid.uuid4()),
                        call_uuid=str(uuid.uuid4()),
                        source="bench",
                        key_date=date(2024, 1, 1),
                        audio_metadata={"codec": "pcm_s16le", "duration": "8.2"},
                        fetched_at="2024-01-01T00:00:00.000000Z",
                    )

                batch = spools if round_ else spools[: max(1, count // 10)]
                server = sum(server_process.cpu_times()[:2])
                cpu, wall = time.process_time(), time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(one, [s for _, s in batch]))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                server = sum(server_process.cpu_times()[:2]) - server
                if round_:
                    best = min(best, cpu)
                    print(
                        f"  round {round_}: {cpu * 1000 / count:6.2f} CPU ms/recording "
                        f"({cpu:.2f} s CPU, {wall:.2f} s wall; moto server "
                        f"{server * 1000 / count:.2f} CPU ms/recording)"
                    )
            print(f"  best: {best * 1000 / count:.2f} CPU ms per recording (client process)")
            for hashing, _ in spools:
                hashing.close()
    finally:
        moto.terminate()
        moto.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=200, help="number of 64 KiB recordings")
    parser.add_argument("--large-mib", type=int, default=256, help="size of the large recording")
    parser.add_argument(
        "--cpu", type=int, metavar="N", help="only the client-CPU case, N 256 KiB recordings"
    )
    parser.add_argument("--threads", type=int, default=8, help="threads of the --cpu case")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds of --cpu")
    args = parser.parse_args()
    if args.cpu:
        cpu_case(args.cpu, args.threads, args.rounds)
        return 0

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
