"""Benchmark: the custody log — integrating events into the tree with tile writes to moto,
and `audit verify-bucket` over the result.

    .venv/bin/python bench/bench_custody_log.py [--events N] [--more M]

1. N custody events (default 100,000) are sequenced into a SQLite ledger's chain (the
   sequencer, for reference), then ``publish_log`` builds the tree over them and writes
   its tiles, entry bundles and a signed checkpoint to moto: events/s.  The peer is
   boto3 writing the same objects with bare ``put_object`` (no If-None-Match, no
   read-back); the ratio ours/peer must stay above FLOOR_PUBLISH.
2. A run adding M more events (default 1,000) on top: only the right edge is read and
   only new tiles written, so it must cost far less than the first N.
3. ``verify_bucket`` over the N + M event log (signatures, tiles vs entries, every
   checkpoint's root, consistency, and every object version under the prefix listed
   with ListObjectVersions — the bucket is versioned, as production's): seconds,
   events/s and seconds per 100,000 events.

For comparison (not measured here): Trillian Tessera publishes about 450 writes/s on a
2-vCPU AWS instance with Aurora and 10,000/s on NVMe POSIX storage.  moto caps near 100
PUT/s on these machines, so the absolute S3 figures are moto's, not S3's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from tenios_io.custody import signing
from tenios_io.custody.chain import NewEvent
from tenios_io.custody.layout import log_prefix
from tenios_io.custody.verify import verify_bucket
from tenios_io.custody.versions import group_by_key
from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.publish.log import publish_log
from tenios_io.store import ArchiveStore, make_s3_client

FLOOR_PUBLISH = 0.3  # PUT + read-back HEAD per object vs one bare PUT


def _append(ledger: Ledger, count: int, start: int) -> float:
    started = time.perf_counter()
    for base in range(start, start + count, 5000):
        events = [
            NewEvent(None, "bench", {"n": n, "note": "a custody event of typical size " * 3})
            for n in range(base, min(base + 5000, start + count))
        ]
        ledger.append_events(events)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--more", type=int, default=1_000)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("tenios_io").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    client = make_s3_client(session=session, endpoint_url=f"http://{host}:{port}")
    client.create_bucket(Bucket="bench-log")
    client.put_bucket_versioning(
        Bucket="bench-log", VersioningConfiguration={"Status": "Enabled"}
    )  # the latest checkpoint gets one version per run, as in production
    client.create_bucket(Bucket="bench-peer")
    store = ArchiveStore(client, "bench-log", retention_mode="none")
    signer = signing.generate("bench.example")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        ledger = Ledger(create_ledger_engine(url), actor="bench")
        n = args.events
        seconds = _append(ledger, n, 0)
        print(f"{n:,} events sequenced into the chain (reference): {n / seconds:,.0f} events/s")

        started = time.perf_counter()
        published = publish_log(ledger, store, signer, head_seq=ledger.chain_head().seq)
        ours = time.perf_counter() - started
        size = published.checkpoint.size
        print(
            f"tree + {published.objects_written:,} tiles/bundles + signed checkpoint to moto: "
            f"{size:,} events in {ours:.1f} s = {size / ours:,.0f} events/s"
        )
        bodies = []
        for obj in store.iter_objects(log_prefix(store.prefix)):
            bodies.append(client.get_object(Bucket="bench-log", Key=obj.key)["Body"].read())
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            client.put_object(Bucket="bench-peer", Key=f"log/{i}", Body=body)
        peer = time.perf_counter() - started
        ratio = peer / ours
        print(
            f"  peer: bare put_object of the same {len(bodies):,} objects {peer:.1f} s; "
            f"ratio ours/peer {ratio:.2f} (floor {FLOOR_PUBLISH})"
        )
        failed |= ratio < FLOOR_PUBLISH

        _append(ledger, args.more, n)
        started = time.perf_counter()
        more = publish_log(ledger, store, signer, head_seq=ledger.chain_head().seq)
        incremental = time.perf_counter() - started
        added = more.checkpoint.size - size
        print(
            f"a run adding {added:,} events on top: {incremental:.2f} s "
            f"({more.objects_written} objects written) = {added / incremental:,.0f} events/s"
        )

        started = time.perf_counter()
        report = verify_bucket(store, signer.verifier)
        verify = time.perf_counter() - started
        print(
            f"verify-bucket over {report.tree_size:,} events ({len(report.checkpoints)} "
            f"checkpoints, {report.versions_listed:,} object versions listed): {verify:.1f} s "
            f"= {report.tree_size / verify:,.0f} events/s, "
            f"{verify * 100_000 / report.tree_size:.1f} s per 100,000 events, "
            f"{'OK' if report.ok else 'FINDINGS: ' + str(report.findings[:3])}"
        )
        failed |= not report.ok
        started = time.perf_counter()
        listed = sum(len(group.entries) for group in group_by_key(store.iter_versions()))
        print(
            f"  of which listing the {listed:,} object versions key by key (the same pass "
            f"alone): {time.perf_counter() - started:.2f} s"
        )
        print(
            "for comparison, Tessera's published write rates: ~450/s (2 vCPU, Aurora), "
            "~10,000/s (NVMe POSIX)"
        )
        ledger.engine.dispose()
    server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
