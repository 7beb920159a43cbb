"""Benchmark: evidence packages — building one for a large recording, and its page
verifying a recording in a real browser.

    .venv/bin/python bench/bench_evidence.py [--build-mib 1024] [--page-mib 100]

1. ``tenios-archive audit evidence`` of a ``--build-mib`` recording (moto, SQLite, a
   signed log), in a child process: its peak RSS (the package is streamed: it must stay
   at most 150 MB whatever the size) and its wall time against the floor of a bare
   streamed GET of the same object version into a file, then ``sha256sum``.
2. ``verify.html`` of a ``--page-mib`` recording (above the embed limit, so the page
   asks for the file) in headless Chromium over the DevTools protocol: the time from
   picking the file to the verdict, against ``sha256sum`` of the same file.

Prints the figures and the ratios; exits 1 if the build's RSS exceeds 150 MB or a
ratio falls under its floor.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from tenios_io.custody import signing
from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.publish.checkpoints import write_checkpoint
from tenios_io.run.archiver import Archiver
from tenios_io.run.retry import RetryPolicy
from tenios_io.store import ArchiveStore, make_s3_client
from tenios_io.testing import FakeSource
from tenios_io.testing.browser import Browser

MiB = 1024 * 1024
MAX_RSS_MB = 150
FLOOR_BUILD = 0.3  # download + hash, vs logging, checkpoint, HEAD, stream + hash + page
FLOOR_PAGE = 0.05  # WebCrypto's one-shot digest of a file read into the page, vs sha256sum
BUCKET = "bench-evidence"


def wav(size: int, seed: int) -> bytes:
    """A WAV of exactly ``size`` bytes (8-bit mono 8 kHz), noise after the header."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", size - 8, b"WAVE", b"fmt ", 16, 1, 1, 8000, 8000, 1, 8, b"data", size - 44,
    )  # fmt: skip
    rng = random.Random(seed)
    block = rng.randbytes(MiB)  # noise repeated: randbytes of a GiB overflows
    body = (block * ((size - 44) // MiB + 1))[: size - 44]
    return header + body


def archive(ledger: Ledger, store: ArchiveStore, payloads: dict[str, bytes]) -> None:
    from datetime import UTC, datetime

    ledger.register([NewRecording(u, recorded_at=datetime.now(UTC)) for u in payloads])
    archiver = Archiver(
        ledger=ledger,
        store=store,
        sources=[FakeSource(dict(payloads))],
        policy=RetryPolicy(max_attempts=1),
        lease_seconds=3600,
    )
    claims = ledger.claim_batch(len(payloads), lease_seconds=3600)
    for result in archiver.archive_batch(claims):
        assert result.outcome.value == "archived", result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-mib", type=int, default=1024)
    parser.add_argument("--page-mib", type=int, default=100)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("tenios_io").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    client = make_s3_client(session=session, endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as scratch:
        work = Path(scratch)
        url = f"sqlite:///{work / 'ledger.db'}"
        upgrade(url)
        ledger = Ledger(create_ledger_engine(url), actor="bench")
        store = ArchiveStore(client, BUCKET, retention_mode="governance", retention_days=30)
        key_file = work / "custody.key"
        signer = signing.generate("bench.example")
        signing.write_signer(key_file, signer)
        big, page_id = str(uuid.uuid4()), str(uuid.uuid4())
        archive(ledger, store, {big: wav(args.build_mib * MiB, 1)})
        archive(ledger, store, {page_id: wav(args.page_mib * MiB, 2)})
        write_checkpoint(ledger, store, signer=signer)
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
            "TENIOS_DATABASE_URL": url,
            "TENIOS_S3_BUCKET": BUCKET,
            "TENIOS_RETENTION_DAYS": "30",
            "TENIOS_CUSTODY_KEY_FILE": str(key_file),
        }
        cli = [sys.executable, "-m", "tenios_io.cli"]

        # 1. The package of a large recording, in a child process.
        rec = ledger.get(big)
        # The floor, in a child process too (not beside the in-process moto server): a
        # bare streamed GET of the same version into a file, then sha256sum.
        floor_script = (
            "import boto3,sys;"
            "c=boto3.client('s3',endpoint_url=sys.argv[1],region_name='us-east-1',"
            "aws_access_key_id='bench',aws_secret_access_key='bench');"
            "b=c.get_object(Bucket=sys.argv[2],Key=sys.argv[3],VersionId=sys.argv[4])['Body'];"
            "f=open(sys.argv[5],'wb');[f.write(x) for x in b.iter_chunks(1<<20)];f.close()"
        )
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", floor_script, endpoint, BUCKET, str(rec.s3_key),
             str(rec.s3_version_id), str(work / "floor.wav")],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(["sha256sum", str(work / "floor.wav")], check=True, capture_output=True)
        floor_build = time.perf_counter() - started
        (work / "floor.wav").unlink()
        started = time.perf_counter()
        # /usr/bin/time reports the peak RSS of its own child: the command alone (this
        # process's RUSAGE_CHILDREN would count the pages a fork briefly shares with it).
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cli, "audit", "evidence", big, "--reason", "bench",
             "--output", str(work / "out")],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
        build = time.perf_counter() - started
        peak_mb = int(done.stderr.strip().splitlines()[-1]) / 1024
        ratio_build = floor_build / build
        print(f"package of {args.build_mib} MiB: {build:.1f} s, peak RSS {peak_mb:.0f} MB")
        print(f"  floor (bare GET + sha256sum): {floor_build:.1f} s; ratio {ratio_build:.2f}")
        failed |= peak_mb > MAX_RSS_MB or ratio_build < FLOOR_BUILD

        # 2. The page of a recording above the embed limit, verified in Chromium.
        subprocess.run(
            [*cli, "audit", "evidence", page_id, "--reason", "bench", "--output",
             str(work / "out")],
            check=True, env=env, capture_output=True,
        )  # fmt: skip
        folder = work / "out" / page_id
        recording = folder / f"{page_id}.wav"
        started = time.perf_counter()
        subprocess.run(["sha256sum", str(recording)], check=True, capture_output=True)
        floor_page = time.perf_counter() - started
        browser = Browser(work / "profile")
        try:
            browser.open(folder / "verify.html")
            browser.evaluate("window.verification")
            started = time.perf_counter()
            browser.choose_file("#file", recording)
            browser.evaluate("window.verification")
            page = time.perf_counter() - started
            verdict = browser.evaluate("document.body.dataset.verdict")
        finally:
            browser.close()
        ratio_page = floor_page / page
        print(f"page verifies {args.page_mib} MiB in Chromium: {page:.2f} s, verdict {verdict}")
        print(f"  floor (sha256sum): {floor_page:.2f} s; ratio {ratio_page:.2f}")
        failed |= verdict != "verified" or ratio_page < FLOOR_PAGE
        ledger.engine.dispose()
    server.stop()
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
