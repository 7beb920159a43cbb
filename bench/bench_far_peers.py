"""Benchmark: `run nightly` against far-away peers, at 8 to 256 recordings in flight.

    python -m bench far_peers     # or: .venv/bin/python bench/bench_far_peers.py
        [--in-flight 32 --in-flight 256] [--curve] [--api-ms 100] [--s3-ms 25]

Production's peers are far away: TENIOS over the internet (100 ms and more per answer)
and S3 in another data centre (tens of ms per request).  Here the simulator answers
every request after ``--api-ms`` (``--fault delay=0.1``), and every S3 request pays
``--s3-ms`` through a TCP latency proxy in front of the moto server (each byte from
the client is forwarded that much later, so each request-answer exchange takes that
much longer; answers flow back at once).  Recordings of 64 KiB.

At each number in flight N:

- the floor: N plain threads doing fetch → SHA-256 → ``put_object(IfNoneMatch="*",
  ChecksumSHA256=…)`` → ``head_object`` (the same peers, the same round trips);
- ``run nightly --in-flight N`` (a child process, SQLite ledger, no Prefect API);
- the ideal: N ÷ the round trips of one recording (API + PUT + HEAD).

Each from the marginal rate between two sizes of work (SIZES[N]: n1 vs n2 recordings,
so start-up and the checkpoint are not counted), floor and pipeline alternating.
Exits 1 when ``run nightly`` is under FLOOR times the floor at 32 or 256 in flight.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pipeline beside it

import bench_pipeline as bp

FLOOR = 0.9
SIZE = 64 * bp.KiB
#: in flight → (n1, n2) recordings: enough work for a marginal rate at each level.
SIZES = {8: (40, 200), 32: (160, 800), 64: (320, 1280), 128: (480, 1440), 256: (640, 1920)}
GATED = (32, 256)

PROXY = """
import asyncio, sys
delay, listen_port, target_port = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ready = sys.argv[4]

async def delayed(reader, writer, seconds):
    # Forward each chunk `seconds` after it arrived, in order: a one-way delay, the
    # bytes behind it pipelined (a 64 KiB body pays the delay once, not per chunk).
    queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    async def read():
        while data := await reader.read(65536):
            await queue.put((loop.time() + seconds, data))
        await queue.put((0.0, b""))
    async def write():
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()
    await asyncio.gather(read(), write(), return_exceptions=True)

async def handle(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        delayed(client_reader, server_writer, delay),
        delayed(server_reader, client_writer, 0.0),
        return_exceptions=True,
    )

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=1024)
    open(ready, "w").write("ok")
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

SIMULATOR = bp.SIMULATOR.replace(
    "sim = Simulator(access_key=sys.argv[4], seed=7)",
    "from tenios_io.simulator.faults import FaultPlan\n"
    "sim = Simulator(access_key=sys.argv[4], seed=7, faults=FaultPlan.parse(sys.argv[5]))",
)


class FarPeers:
    """The simulator (answers delayed) and moto behind the latency proxy, each in its
    own process."""

    def __init__(self, count: int, api_ms: float, s3_ms: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-far-"))
        moto_port, proxy_port = bp.free_port(), bp.free_port()
        seconds = (SIZE - 44) / bp.BYTES_PER_SECOND
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    *(sys.executable, "-c", PROXY, str(s3_ms / 1000), str(proxy_port)),
                    *(str(moto_port), str(self.tmp / "proxy-ready")),
                ]
            ),
            subprocess.Popen(
                [
                    *(sys.executable, "-c", SIMULATOR, str(seconds), str(count)),
                    *(str(self.tmp), bp.KEY, f"delay={api_ms / 1000}"),
                ],
                cwd=bp.ROOT,
            ),
        ]
        bp.wait_listening(moto_port, self.procs[0])
        bp.wait_for(self.tmp / "proxy-ready", self.procs[1])
        bp.wait_for(self.tmp / "port", self.procs[2])
        self.peers = bp.Peers(
            f"http://127.0.0.1:{(self.tmp / 'port').read_text()}",
            f"http://127.0.0.1:{proxy_port}",
            (self.tmp / "uuids").read_text().split(),
            self.tmp,
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(30)


def run_nightly(p: bp.Peers, uuids: list[str], in_flight: int, batch_size: int) -> float:
    """Wall seconds of ``run nightly --in-flight N`` over ``uuids``."""
    concurrency = min(in_flight, 8)  # batches; the recordings in the air are --in-flight's
    in_flight_option = ("--in-flight", str(in_flight))
    return bp.pipeline(p, uuids, concurrency, batch_size, *in_flight_option).seconds


def level(far: FarPeers, n_flight: int, rounds: int, api_ms: float, s3_ms: float) -> float:
    """Floor, pipeline and ideal at ``n_flight`` in flight; returns pipeline/floor."""
    n1, n2 = SIZES[n_flight]
    uuids = far.peers.uuids
    batch_size = max(10, min(50, n_flight // 4))
    floor_s = {n1: float("inf"), n2: float("inf")}
    ours_s = {n1: float("inf"), n2: float("inf")}
    for _ in range(rounds):
        for n in (n1, n2):
            floor_s[n] = min(floor_s[n], bp.floor(far.peers, uuids[:n], n_flight))
            ours_s[n] = min(ours_s[n], run_nightly(far.peers, uuids[:n], n_flight, batch_size))
    floor_rate = (n2 - n1) / (floor_s[n2] - floor_s[n1])
    ours_rate = (n2 - n1) / (ours_s[n2] - ours_s[n1])
    ideal = n_flight / ((api_ms + 2 * s3_ms) / 1000)
    ratio = ours_rate / floor_rate
    print(
        f"{n_flight:4d} in flight ({n1} vs {n2}, batches of {batch_size}): floor "
        f"{floor_rate:6.1f} rec/s, run nightly {ours_rate:6.1f} rec/s = {ratio:.2f}x the "
        f"floor; ideal {ideal:6.0f} rec/s (floor {floor_rate / ideal:.2f}, ours "
        f"{ours_rate / ideal:.2f} of it); load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--in-flight", type=int, action="append", choices=sorted(SIZES))
    parser.add_argument("--curve", action="store_true", help="8, 32, 64, 128 and 256")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--api-ms", type=float, default=100.0)
    parser.add_argument("--s3-ms", type=float, default=25.0)
    args = parser.parse_args()
    levels = sorted(SIZES) if args.curve else (args.in_flight or list(GATED))
    far = FarPeers(2 * max(SIZES[n][1] for n in levels), args.api_ms, args.s3_ms)
    started = time.perf_counter()
    failed = False
    try:
        print(
            f"TENIOS answers after {args.api_ms:.0f} ms, each S3 request +{args.s3_ms:.0f} ms "
            f"(latency proxy), {SIZE // bp.KiB} KiB recordings; load {os.getloadavg()[0]:.1f}"
        )
        bp.floor(far.peers, far.peers.uuids[-20:], 8)  # warm the peers up
        for n_flight in levels:
            ratio = level(far, n_flight, args.rounds, args.api_ms, args.s3_ms)
            if n_flight in GATED:
                failed |= not ratio >= FLOOR
    finally:
        far.close()
    spent = time.perf_counter() - started
    print(f"floor: run nightly >= {FLOOR} x the floor at {GATED}; {spent:.0f} s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
