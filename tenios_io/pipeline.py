"""Wiring one run from settings: ledger, archive store, recording sources, archiver.

Everything is built here once and injected (STYLE.md: each I/O class receives
its client, never builds one), and closed when the run ends.  ``preflight``
checks what a run needs before any work, so a misconfiguration is one clear
error (exit 2) instead of a night of failures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta

from tenios_io.api import ApiSource, TeniosClient, make_http_client
from tenios_io.archive import Archiver
from tenios_io.config import Settings
from tenios_io.exceptions import BucketNotUsable, ConfigError, StoreUnavailable
from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.schema import require_current
from tenios_io.retry import RetryPolicy
from tenios_io.sources import RecordingSource
from tenios_io.store import ArchiveStore, BucketStatus, make_s3_client


@dataclass
class Pipeline:
    """The wired objects of one run."""

    settings: Settings
    ledger: Ledger
    store: ArchiveStore
    sources: list[RecordingSource]
    archiver: Archiver

    def preflight(self) -> BucketStatus:
        """Bucket reachable and writable (the database and access key were checked when
        the pipeline was opened); ConfigError with the reason otherwise."""
        try:
            return self.store.check()
        except (BucketNotUsable, StoreUnavailable) as exc:
            raise ConfigError(f"preflight: archive bucket not usable: {exc}") from None


@contextmanager
def open_pipeline(
    settings: Settings,
    *,
    actor: str,
    concurrency: int = 8,
    before_request: Callable[[], None] | None = None,
) -> Iterator[Pipeline]:
    """Build the run's pipeline; checks the access key and that the ledger is migrated."""
    access_key = settings.require_access_key()
    settings.require_bucket()
    require_current(settings.database_url)
    with ExitStack() as stack:
        engine = create_ledger_engine(settings.database_url, pool_size=concurrency + 2)
        stack.callback(engine.dispose)
        ledger = Ledger(engine, actor=actor)
        http = stack.enter_context(make_http_client(settings.api_url, pool_size=concurrency))
        client = TeniosClient(http, access_key, before_request=before_request)
        s3 = make_s3_client()
        stack.callback(s3.close)
        store = ArchiveStore.from_settings(settings, s3)
        sources: list[RecordingSource] = [ApiSource(client)]
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
        )
        yield Pipeline(settings, ledger, store, sources, archiver)
