"""The S3 client factory: boto3's standard credential chain, standard-mode retries.

The store never builds a client itself; callers build one here and inject it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from tenios_io.store.timestamps import parse_timestamp

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["make_s3_client"]

#: botocore's data loader (it reads and caches the service models: S3's is large), shared
#: by the sessions made here: a run builds a client for its preflight and another for
#: its pipeline, and each new session read the models again (~0.3 s on a busy machine).
#: The models are package data, the same for every session; credentials and settings
#: are still each session's own.
_loader: Any = None
_loader_lock = threading.Lock()

#: Connections a client keeps (botocore's default is 10): the custody log writes 16
#: tiles at once (tenios_io.publish.log.MAX_WRITERS).
DEFAULT_POOL = 16


def _session() -> boto3.session.Session:
    global _loader
    session = boto3.session.Session()
    with _loader_lock:
        if _loader is None:
            _loader = session._session.get_component("data_loader")
        else:
            session._session.register_component("data_loader", _loader)
    return session


def make_s3_client(
    max_attempts: int = 10,
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
    max_pool_connections: int = DEFAULT_POOL,
) -> S3Client:
    """An S3 client from boto3's standard credential chain with standard-mode retries.

    ``max_attempts`` counts every attempt, the first included (botocore's
    ``total_max_attempts``); standard mode backs off exponentially with jitter
    and retries throttling (503 SlowDown), 5xx and connection errors.

    Credentials, region and endpoint come from boto3 itself (environment,
    ``AWS_PROFILE``, instance/task roles, ``AWS_ENDPOINT_URL_S3``); ``endpoint_url``
    and ``session`` exist for tests and tools that must pin them.
    ``max_pool_connections``: HTTP connections kept for the client's threads (at least
    one per thread that uses it at once, or they queue for a connection).
    """
    session = session or _session()
    # Faster timestamps in responses, the same instants (see tenios_io.store.timestamps).
    # The factory belongs to the session: its clients made after this share the parser.
    factory = session._session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    # botocore's parameter validation stays on: it costs ~0.03 ms per archived recording
    # (PUT + HEAD), within the noise of bench/bench_store.py --cpu, and stops a wrong
    # argument with a clear ParamValidationError before anything is sent.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=120,
        tcp_keepalive=True,
        max_pool_connections=max(1, max_pool_connections),
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)
