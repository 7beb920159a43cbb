"""Wiring one run from settings: ledger, archive store, recording sources, archiver.

Everything is built here once and injected (STYLE.md: each I/O class receives
its client, never builds one), and closed when the run ends.  ``preflight``
checks what a run needs before any work, so a misconfiguration is one clear
error (exit 2) instead of a night of failures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from tenios_io.api import ApiSource, TeniosClient, make_http_client
from tenios_io.config import Settings
from tenios_io.exceptions import (
    ApiUnreachable,
    BucketNotUsable,
    BucketOfAnotherLedger,
    ConfigError,
    HostKeyError,
    SourceError,
    SourceUnavailable,
    StoreUnavailable,
    TeniosArchiveError,
)
from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.schema import require_current
from tenios_io.progress import NO_PROGRESS, ProgressListener
from tenios_io.publish.identity import bind_bucket
from tenios_io.publish.log import check_signing_key, custody_signer
from tenios_io.publish.manifests import ManifestWritten, write_missing_manifests
from tenios_io.publish.witnessing import load_witnesses
from tenios_io.recording.source import Fetched, FetchRequest, RecordingSource, Sink
from tenios_io.recording.spool import check_spool_dir, remove_stale_spools
from tenios_io.run.archiver import Archiver
from tenios_io.run.canary import ApiCanary
from tenios_io.run.retry import RetryPolicy
from tenios_io.run.stop import RunGuard
from tenios_io.sftp.sweep import SweepReport, sweep_drop
from tenios_io.store import ArchiveStore, BucketStatus, make_s3_client
from tenios_io.store.client import DEFAULT_POOL

if TYPE_CHECKING:
    from tenios_io.sftp import SftpDrop, SftpSource

logger = logging.getLogger(__name__)


class PerThreadSftp:
    """The SFTP drop as a RecordingSource, one SSH connection per worker thread.

    Batches run in parallel threads; rather than share one paramiko session (and its
    reconnect logic) between them, each thread gets its own, opened on first use and
    all closed with the pipeline.
    """

    name = "sftp"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._opened: list[SftpSource] = []
        self._lock = threading.Lock()
        self._down: str | None = None
        self._refused: ConfigError | HostKeyError | None = None

    @property
    def down(self) -> str | None:
        """Why the drop is not used in this run (it could not be reached), if so."""
        return self._down

    def source(self) -> SftpSource:
        """This thread's SftpSource (connecting now if needed).

        A drop that cannot be reached is tried once per run, not once per recording
        and thread: after one failed connect every later call fails at once with
        SourceUnavailable, and the recordings are fetched from the API where it can
        serve (issue 11).  A drop that refuses the login or shows an unknown host key
        raises that error (ConfigError / HostKeyError) every time: it stops the run
        (run/stop.py), it is not "down".
        """
        existing: SftpSource | None = getattr(self._local, "source", None)
        if existing is None:
            if self._refused is not None:
                raise self._refused
            if self._down is not None:
                raise SourceUnavailable(self._down)
            from tenios_io.sftp import SftpSource  # paramiko only when a drop is used

            try:
                existing = SftpSource.from_settings(self._settings)
            except SourceUnavailable as exc:
                self._down = f"the SFTP drop is down for this run ({exc}); tried again next run"
                raise SourceUnavailable(self._down) from None
            except (ConfigError, HostKeyError) as exc:
                self._refused = exc
                raise
            self._local.source = existing
            with self._lock:
                self._opened.append(existing)
        return existing

    def can_fetch(self, request: FetchRequest) -> bool:
        return self.source().can_fetch(request)

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        return self.source().fetch(request, sink)

    def after_archived(self, request: FetchRequest, fetched: Fetched) -> str | None:
        return self.source().after_archived(request, fetched)

    def release_drop(self) -> SftpDrop:
        return self.source().drop

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for source in opened:
            source.close()


@dataclass
class Pipeline:
    """The wired objects of one run."""

    settings: Settings
    ledger: Ledger
    store: ArchiveStore
    sources: list[RecordingSource]
    archiver: Archiver
    sftp: PerThreadSftp | None = None
    stop: threading.Event | None = None
    """Set by a signal (interrupt.py): the long steps before archiving (the sweep, a
    backfill's import) end early at their next file or chunk."""
    api: TeniosClient | None = None
    """The TENIOS client, when the API is one of the run's sources."""

    def preflight(self) -> BucketStatus:
        """Bucket reachable and writable and this ledger's (its ledger id, written at the
        first run: :mod:`tenios_io.publish.identity`), the SFTP drop (when configured)
        reachable with a trusted host key (the database and access key were checked when
        the pipeline was opened), TENIOS_API_URL reachable (when the API is a source),
        the custody signing key readable; ConfigError with the reason otherwise."""
        # Not only at the run's end: a run without its key stops before fetching anything.
        signer = custody_signer(
            self.settings.custody_key_file, unsigned=self.settings.custody_unsigned
        )
        load_witnesses(self.settings.custody_witnesses, self.settings.custody_witness_quorum)
        stale = remove_stale_spools(self.settings.spool_dir)
        if stale:
            logger.warning("removed %d spool file(s) left by a killed run", len(stale))
        try:
            status = self.store.check()
            binding = bind_bucket(self.ledger, self.store)
        except BucketOfAnotherLedger as exc:
            raise BucketOfAnotherLedger(f"preflight: {exc} (nothing was fetched)") from None
        except (BucketNotUsable, StoreUnavailable) as exc:
            raise ConfigError(f"preflight: archive bucket not usable: {exc}") from None
        try:
            check_signing_key(self.ledger, self.store, signer)
        except ConfigError as exc:
            message = f"preflight: {exc} (nothing was fetched)"
            raise ConfigError(message, variable=exc.variable) from None
        if binding.written:
            logger.info(
                "ledger id %s written to s3://%s/%s",
                binding.ledger_id,
                self.store.bucket,
                binding.key,
            )
        self.write_missing_manifests()
        if self.sftp is not None:
            try:
                self.sftp.source().drop.check()
            except SourceUnavailable as exc:
                # Down, not misconfigured: the run goes on without it (tried once).
                logger.warning("%s; recordings are fetched from the API where it can", exc)
            except (SourceError, ConfigError) as exc:
                raise ConfigError(f"preflight: SFTP drop not usable: {exc}") from None
        if self.api is not None:
            try:
                self.api.check_reachable()
            except ApiUnreachable as exc:
                raise ConfigError(
                    f"preflight: {exc} (nothing was fetched)", variable="TENIOS_API_URL"
                ) from None
        return status

    def report_to(self, progress: ProgressListener) -> None:
        """Tell ``progress`` of the run's fetches, outcomes and discoveries from now on
        (the CLI's bar, made once the preflight knows how many are due)."""
        self.archiver.progress = progress

    def write_missing_manifests(self) -> list[ManifestWritten]:
        """The custody manifests an earlier run left unwritten (it crashed, or S3 refused
        them): recordings archived longer than a lease ago and still not in one.  A
        failure here is logged, never fatal: they are tried again next run."""
        try:
            return write_missing_manifests(
                self.ledger,
                self.store.writer,
                run_id=self.archiver.run_id,
                grace_seconds=self.settings.lease_seconds,
            )
        except TeniosArchiveError as exc:
            logger.warning("missing custody manifests not written (%s): tried again next run", exc)
            return []

    def sweep(self, *, actor: str) -> SweepReport | None:
        """Sweep the SFTP drop (None when no drop is configured); a drop that is down
        gives a report that says so (``unavailable``), not an error."""
        if self.sftp is None:
            return None
        try:
            return sweep_drop(
                self.sftp.source().drop,
                self.ledger,
                release=self.settings.sftp_after != "keep",
                actor=actor,
                progress=self.archiver.progress,
                stop=self.stop,
            )
        except SourceUnavailable as exc:
            logger.warning("SFTP sweep skipped: %s", exc)
            return SweepReport(unavailable=str(exc))


@contextmanager
def open_pipeline(
    settings: Settings,
    *,
    actor: str,
    concurrency: int = 8,
    in_flight: int | None = None,
    batches: int | None = None,
    before_request: Callable[[], None] | None = None,
    progress: ProgressListener = NO_PROGRESS,
) -> Iterator[Pipeline]:
    """Build the run's pipeline; checks the access key and that the ledger is migrated.
    ``progress`` hears of the run's fetches, outcomes and discoveries.  ``in_flight``
    recordings are in the air at once (RunOptions.recordings; None: ``concurrency``,
    each batch working its claims one after another), fed by ``batches`` batches
    (RunOptions.batches; None: ``concurrency``): the HTTP and S3 connection pools are
    sized for the recordings, the ledger's for the batches (each one writer)."""
    in_flight = in_flight or concurrency
    batches = batches or concurrency
    access_key = settings.require_access_key()
    settings.require_bucket()
    check_spool_dir(settings.spool_dir)
    require_current(settings.database_url)
    with ExitStack() as stack:
        engine = create_ledger_engine(settings.database_url, pool_size=batches + 2)
        stack.callback(engine.dispose)
        ledger = Ledger(engine, actor=actor)
        http = stack.enter_context(make_http_client(settings.api_url, pool_size=in_flight))
        client = TeniosClient(http, access_key, before_request=before_request)
        # A connection per recording in flight, and a few for the run's own requests
        # (manifests, the custody log).
        s3 = make_s3_client(max_pool_connections=max(DEFAULT_POOL, in_flight + 2))
        stack.callback(s3.close)
        store = ArchiveStore.from_settings(settings, s3)
        sftp = None
        if settings.sftp_url:
            sftp = PerThreadSftp(settings)
            stack.callback(sftp.close)
        available: dict[str, RecordingSource] = {"api": ApiSource(client)}
        if sftp is not None:
            available["sftp"] = sftp
        sources = [available[n] for n in settings.source_order.split(",") if n in available]
        uses_api = any(source is available["api"] for source in sources)
        archiver = Archiver(
            ledger=ledger,
            store=store,
            sources=sources,
            policy=RetryPolicy(
                max_attempts=settings.max_attempts,
                not_found_grace=timedelta(hours=settings.not_found_grace_hours),
            ),
            lease_seconds=settings.lease_seconds,
            spool_dir=settings.spool_dir,
            progress=progress,
            guard=RunGuard(canary=ApiCanary(ledger, client) if uses_api else None),
            # no more in the air than batches: each batch works its own, one at a time
            in_flight=in_flight if in_flight > batches else 1,
        )
        stack.callback(archiver.close)
        yield Pipeline(
            settings, ledger, store, sources, archiver, sftp, api=client if uses_api else None
        )
