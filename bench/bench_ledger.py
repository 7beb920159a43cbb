"""Benchmark: the ledger's registration and claim throughput (SQLite and PostgreSQL).

    .venv/bin/python bench/bench_ledger.py [--ids N] [--recordings M] [--pg URL]

1. Registering N ids in one import (rows + hash-chained `registered` events), against
   the peer: a bare executemany of the same rows into the same table (no idempotency
   check, no events).  Ratio ours/peer must stay above FLOOR_REGISTER.
2. The work queue under several workers on PostgreSQL: M recordings claimed in
   batches of 50 and completed as ``Archiver.archive_batch`` does it (claim, renew,
   the batch's outcomes and custody events in one transaction)
   by 1, 2, 4 and 8 processes, against the peer: the same claims (SKIP LOCKED) and
   row updates with no custody events at all.  Ratio ours/peer at 4
   workers must stay above FLOOR_CHAIN: that is the price of the custody queue and
   its sequencer.  A monitor prints the worst integration lag (events queued, age
   of the oldest queued event) seen while the workers ran.

3. Claim latency: the median of ``claim_batch(50)`` with 10,000 and with --backlog
   (default 1,000,000) pending rows, on SQLite and PostgreSQL, printed as a ratio
   (flat claims: the target is <= 1.5x).
4. ``import_recordings`` of --import-ids ids streamed from a file (the ``ledger
   import`` path) with its peak RSS growth, and the re-import; on PostgreSQL a worker
   claims and completes batches throughout and the worst stall it met is printed.

Exits 1 when a ratio falls under its floor.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.ledger.schema import downgrade, upgrade
from tenios_io.ledger.tables import custody_queue, recordings

FLOOR_REGISTER = 0.15
FLOOR_CHAIN = 0.3
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _fresh(url: str) -> None:
    """An empty, migrated ledger, whatever an earlier, interrupted run left behind (the
    downgrade refuses while custody events wait in the queue, so integrate them first)."""
    engine = create_ledger_engine(url)
    with contextlib.suppress(Exception):  # no ledger there yet: nothing to integrate
        Ledger(engine).integrate_all()
    engine.dispose()
    downgrade(url)
    upgrade(url)


def _pending_row(key: str, now: datetime) -> dict[str, object]:
    """A bare pending ``recordings`` row (the peers and the claim backlog)."""
    return {
        "recording_uuid": key,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "discovered_at": now,
        "legal_hold": False,
        "updated_at": now,
        "source_hint": "api",
    }


def bench_register(url: str, n: int) -> float:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    _fresh(url)
    engine = create_ledger_engine(url)
    start = time.perf_counter()
    Ledger(engine).register([NewRecording(i) for i in ids])
    ours = time.perf_counter() - start
    again = time.perf_counter()
    Ledger(engine).register([NewRecording(i) for i in ids])
    rerun = time.perf_counter() - again
    engine.dispose()
    _fresh(url)
    engine = create_ledger_engine(url)
    now = datetime.now(UTC)
    rows = [_pending_row(i, now) for i in ids]
    start = time.perf_counter()
    with engine.begin() as conn:
        for k in range(0, n, 5000):
            conn.execute(recordings.insert(), rows[k : k + 5000])
    peer = time.perf_counter() - start
    engine.dispose()
    ratio = peer / ours
    print(
        f"  register {n:,} ids: ours {ours:.2f} s ({n / ours:,.0f}/s), re-import {rerun:.2f} s;"
        f" peer (bare insert) {peer:.2f} s"
    )
    print(f"  ratio ours/peer {ratio:.2f} (floor {FLOOR_REGISTER})")
    return ratio


def _ready(engine: sa.Engine, out: multiprocessing.Queue, go: Any) -> None:  # type: ignore[type-arg]
    """Connected and imported: say so, then wait for the start (so process start-up,
    a second or more per process here, is not counted as ledger time)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    out.put("ready")
    go.wait()


def _worker(url: str, name: str, out: multiprocessing.Queue, go: Any) -> None:  # type: ignore[type-arg]
    """The pipeline's ledger traffic without the I/O, as ``Archiver.archive_batch`` does
    it: claim a batch of 50 (``run nightly``'s default), renew its leases in one
    statement, and write the batch's outcomes — fetched/uploaded/verified/sidecar_written events and
    ``archived`` — together in one transaction (nothing is lost on a crash: the
    recording is archived again, found already in the bucket)."""
    engine = create_ledger_engine(url)
    ledger = Ledger(engine, actor=name)
    _ready(engine, out, go)
    done = 0
    while batch := ledger.claim_batch(50, lease_seconds=600, owner=name):
        ledger.renew_many([(c.recording_uuid, c.lease_token) for c in batch], 600)
        writes = []
        for claim in batch:
            key = claim.recording_uuid
            writes.append(
                ledger.completed_write(
                    key,
                    claim.lease_token,
                    {"sha256": "0" * 64, "size_bytes": 1},
                    [
                        ("fetched", {"n": 1}),
                        ("uploaded", {}),
                        ("verified", {}),
                        ("sidecar_written", {}),
                    ],
                )
            )
        done += len(ledger.write_outcomes(writes).digests)
    ledger.integrate_all()
    engine.dispose()
    out.put(done)


def _peer_worker(url: str, name: str, out: multiprocessing.Queue, go: Any) -> None:  # type: ignore[type-arg]
    """The same ledger traffic without custody events (no queue, no sequencer): the
    same SKIP LOCKED claims, the batch's rows updated in one transaction."""
    engine = create_ledger_engine(url)
    _ready(engine, out, go)
    r = recordings.c
    done = 0
    while True:
        with engine.begin() as conn:
            keys = list(
                conn.execute(
                    sa.select(r.recording_uuid)
                    .where(r.state == "pending")
                    .order_by(r.next_attempt_at)
                    .limit(50)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            for key in keys:
                conn.execute(
                    recordings.update()
                    .where(r.recording_uuid == key)
                    .values(state="in_progress", lease_token=str(uuid.uuid4()), lease_owner=name)
                )
        if not keys:
            break
        with engine.begin() as conn:
            conn.execute(
                recordings.update()
                .where(r.recording_uuid == sa.bindparam("k"))
                .values(state="archived", sha256="0" * 64, lease_token=None),
                [{"k": key} for key in keys],
            )
        done += len(keys)
    engine.dispose()
    out.put(done)


class _LagMonitor:
    """Samples the custody queue while workers run: how many events wait to be
    integrated and how old the oldest one is (the sequencer keeping up or not)."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        self._engine = create_ledger_engine(url)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.worst_events = 0
        self.worst_seconds = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _run(self) -> None:
        query = sa.select(sa.func.count(), sa.func.min(custody_queue.c.occurred_at))
        while not self._stop.wait(self._every):
            with self._engine.connect() as conn:
                count, oldest = conn.execute(query).one()
            self.worst_events = max(self.worst_events, int(count))
            if oldest:
                at = datetime.strptime(oldest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                age = (datetime.now(UTC) - at).total_seconds()
                self.worst_seconds = max(self.worst_seconds, age)


def bench_workers(url: str, m: int, workers: int, *, peer: bool = False) -> float:
    _fresh(url)
    engine = create_ledger_engine(url)
    Ledger(engine).register([NewRecording(str(uuid.uuid4())) for _ in range(m)])
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    go = ctx.Event()
    target = _peer_worker if peer else _worker
    procs = [ctx.Process(target=target, args=(url, f"w{k}", queue, go)) for k in range(workers)]
    for p in procs:
        p.start()
    assert all(queue.get(timeout=120) == "ready" for _ in procs)
    lag = _LagMonitor(url) if not peer else None
    start = time.perf_counter()
    go.set()
    if lag:
        lag.start()
    done = sum(queue.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    seconds = time.perf_counter() - start
    if lag:
        lag.stop()
    assert done == m, (done, m)
    engine = create_ledger_engine(url)
    assert Ledger(engine).verify_chain().ok
    engine.dispose()
    rate = m / seconds
    label = "peer (no chain)" if peer else "ours"
    print(f"  {label:<16} {workers} worker(s): {m:,} recordings in {seconds:.1f} s = {rate:,.0f}/s")
    if lag:
        print(
            f"  {'':<16} integration lag: worst {lag.worst_events:,} events queued, "
            f"oldest queued event {lag.worst_seconds:.2f} s old"
        )
    return rate


def _bulk_pending(url: str, n: int) -> None:
    """``n`` pending rows inserted directly (the backlog for the claim benchmark)."""
    _fresh(url)
    engine = create_ledger_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for k in range(0, n, 20_000):
            conn.execute(
                recordings.insert(),
                [_pending_row(str(uuid.uuid4()), now) for _ in range(min(20_000, n - k))],
            )
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE recordings")
    engine.dispose()


def bench_claim_latency(url: str, backlog: int, rounds: int = 30) -> float:
    medians = {}
    for n in (10_000, backlog):
        _bulk_pending(url, n)
        engine = create_ledger_engine(url)
        ledger = Ledger(engine, actor="bench")
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            ledger.claim_batch(50, lease_seconds=600, integrate=False)
            times.append(time.perf_counter() - start)
        ledger.integrate_all()
        engine.dispose()
        medians[n] = statistics.median(times)
        print(f"  claim_batch(50) at {n:>10,} pending: median {medians[n] * 1000:.1f} ms")
    ratio = medians[backlog] / medians[10_000]
    print(f"  latency ratio {backlog:,} / 10,000 pending: {ratio:.2f} (target <= 1.5)")
    return ratio


def _status_kb(field: str) -> int:
    """A kB figure of this process from /proc (VmRSS now, VmHWM the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _import_child(url: str, path: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from tenios_io.ledger.importing import iter_import_file

    engine = create_ledger_engine(url)
    ledger = Ledger(engine, actor="bench-import")
    base = _status_kb("VmRSS")
    start = time.perf_counter()
    result = ledger.import_recordings(iter_import_file(Path(path)))
    first = time.perf_counter() - start
    grown = (_status_kb("VmHWM") - base) / 1024
    start = time.perf_counter()
    again = ledger.import_recordings(iter_import_file(Path(path)))
    second = time.perf_counter() - start
    engine.dispose()
    out.put((result.added, first, grown, again.known, second))


def _stall_worker(url: str, stop: Any, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """A worker claiming and completing batches while an import runs: the longest any
    claim or outcome write took (an import must not block either)."""
    engine = create_ledger_engine(url)
    ledger = Ledger(engine, actor="bench-worker")
    worst, calls, done = 0.0, 0, 0
    while not stop.is_set():
        start = time.perf_counter()
        batch = ledger.claim_batch(50, lease_seconds=600, integrate=False)
        worst = max(worst, time.perf_counter() - start)
        writes = [
            ledger.completed_write(c.recording_uuid, c.lease_token, {"size_bytes": 1})
            for c in batch
        ]
        start = time.perf_counter()
        done += len(ledger.write_outcomes(writes).digests)
        worst = max(worst, time.perf_counter() - start)
        calls += 2
    engine.dispose()
    out.put((worst, calls, done))


def bench_import(url: str, n: int, *, backlog: int = 0) -> None:
    """Import ``n`` ids streamed from a file in a child process (peak RSS growth), then
    again (all known).  With ``backlog``, a worker process claims and completes batches
    from that many pending recordings throughout, and the worst stall it met is printed."""
    _fresh(url)
    if backlog:
        engine = create_ledger_engine(url)
        Ledger(engine).register([NewRecording(str(uuid.uuid4())) for _ in range(backlog)])
        engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.txt"
        with path.open("w") as out:
            for _ in range(n):
                out.write(f"{uuid.uuid4()}\n")
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        stop = ctx.Event()
        stalls = ctx.Queue()
        worker = ctx.Process(target=_stall_worker, args=(url, stop, stalls)) if backlog else None
        if worker:
            worker.start()
        proc = ctx.Process(target=_import_child, args=(url, str(path), queue))
        proc.start()
        added, first, grown, known, second = queue.get(timeout=1800)
        proc.join()
        stop.set()
        if worker:
            worst, calls, done = stalls.get(timeout=600)
            worker.join()
    print(
        f"  import {n:,} ids from a file: {first:.1f} s ({added:,} added, events integrated), "
        f"peak RSS growth {grown:.0f} MiB; re-import {second:.1f} s ({known:,} known)"
    )
    if worker:
        print(
            f"  meanwhile a worker made {calls:,} claims/outcome writes ({done:,} recordings): "
            f"worst stall {worst * 1000:.0f} ms (target < 1000 ms)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--recordings", type=int, default=20_000)
    parser.add_argument("--pg", default=os.environ.get("TENIOS_TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--import-ids", type=int, default=1_000_000)
    parser.add_argument(
        "--only", choices=["register", "workers", "claims", "import"], action="append"
    )
    args = parser.parse_args()
    only = set(args.only or ["register", "workers", "claims", "import"])
    ok = True
    if "claims" in only:
        with tempfile.TemporaryDirectory() as tmp:
            print("SQLite claims:")
            bench_claim_latency(f"sqlite:///{Path(tmp) / 'claims.db'}", args.backlog)
        print("PostgreSQL claims:")
        bench_claim_latency(args.pg, args.backlog)
    if "import" in only:
        with tempfile.TemporaryDirectory() as tmp:
            print("SQLite import:")
            bench_import(f"sqlite:///{Path(tmp) / 'import.db'}", args.import_ids)
        print("PostgreSQL import (a worker claims and completes throughout):")
        bench_import(args.pg, args.import_ids, backlog=50_000)
    if "workers" not in only and "register" not in only:
        return 0
    if "register" in only:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = f"sqlite:///{Path(tmp) / 'bench.db'}"
            print("SQLite:")
            ok &= bench_register(sqlite, args.ids) >= FLOOR_REGISTER
        print("PostgreSQL:")
        ok &= bench_register(args.pg, args.ids) >= FLOOR_REGISTER
    if "workers" not in only:
        return 0 if ok else 1
    print(f"PostgreSQL, custody queue + sequencer, {args.recordings:,} recordings:")
    rates = {}
    for workers in (1, 2, 4, 8):
        rates[workers] = bench_workers(args.pg, args.recordings, workers)
        rates[-workers] = bench_workers(args.pg, args.recordings, workers, peer=True)
    print(
        f"  scaling 1 → 4 workers: ours {rates[4] / rates[1]:.2f}x, "
        f"peer {rates[-4] / rates[-1]:.2f}x"
    )
    ratio = rates[4] / rates[-4]
    print(f"  ratio ours/peer at 4 workers {ratio:.2f} (floor {FLOOR_CHAIN})")
    ok &= ratio >= FLOOR_CHAIN
    downgrade(args.pg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
