"""The TENIOS API rate limit through Prefect is one global limit set by configuration
(issue 15): the operator applies it once with `tenios-archive prefect apply`, runs
only use it.  Against the session's Prefect server: runs with other
TENIOS_API_RATE_LIMIT settings leave it unchanged; a run asking for a rate on a server
without the limit stops before any work, naming the command (CLI exit 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from flows.nightly import nightly_archive
from tenios_io.exceptions import ConfigError
from tenios_io.ledger import State
from tenios_io.ops.prefect_setup import LIMIT_NAME, ServerRateLimit, read_rate_limit
from tests.acceptance.conftest import ArchiveWorld
from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]


def _delete_limit() -> None:
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(LIMIT_NAME)
        except ObjectNotFound:
            pass


@pytest.fixture
def no_server_limit(world: ArchiveWorld) -> Iterator[ArchiveWorld]:
    """The session's server without a `tenios-api` limit, before and after (other tests
    share the server and must not be rate-limited by this one's)."""
    _delete_limit()
    yield world
    _delete_limit()


def test_runs_use_the_applied_limit_and_never_change_it(
    no_server_limit: ArchiveWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = no_server_limit
    monkeypatch.setenv("TENIOS_API_RATE_LIMIT", "50")
    applied = cli("prefect", "apply")
    assert applied.exit_code == 0, applied.output
    assert "tenios-api: 50 requests/s (created)" in applied.words
    assert read_rate_limit() == ServerRateLimit(per_second=50.0, burst=50, active=True)
    again = cli("prefect", "apply")
    assert again.exit_code == 0 and "(unchanged)" in again.words, again.output

    uuids = world.sim.seed(6)
    world.register(uuids[:3])
    monkeypatch.setenv("TENIOS_API_RATE_LIMIT", "5")
    first = nightly_archive(concurrency=2, batch_size=2, max_wait_seconds=30)
    world.register(uuids[3:])
    monkeypatch.setenv("TENIOS_API_RATE_LIMIT", "500")
    second = nightly_archive(concurrency=2, batch_size=2, max_wait_seconds=30)
    assert first["counts"] == second["counts"] == {"archived": 3}
    # Neither run's setting reached the server: the limit is still the applied one.
    assert read_rate_limit() == ServerRateLimit(per_second=50.0, burst=50, active=True)
    ledger = world.ledger()
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    ledger.engine.dispose()

    # Changing it is the operator's step again; unsetting the setting removes it.
    monkeypatch.setenv("TENIOS_API_RATE_LIMIT", "20")
    changed = cli("prefect", "apply")
    assert "tenios-api: 20 requests/s (was 50)" in changed.words, changed.output
    assert read_rate_limit() == ServerRateLimit(per_second=20.0, burst=20, active=True)
    monkeypatch.delenv("TENIOS_API_RATE_LIMIT")
    removed = cli("prefect", "apply")
    assert removed.exit_code == 0 and "deleted" in removed.words, removed.output
    assert read_rate_limit() is None


def test_a_run_asking_for_a_rate_without_the_applied_limit_stops_first(
    no_server_limit: ArchiveWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = no_server_limit
    uuids = world.sim.seed(2)
    world.register(uuids)
    monkeypatch.setenv("TENIOS_API_RATE_LIMIT", "5")
    with pytest.raises(ConfigError, match="tenios-archive prefect apply"):
        nightly_archive(concurrency=2, batch_size=2, max_wait_seconds=30)
    refused = cli("run", "nightly", "--concurrency", "2")
    assert refused.exit_code == 2, refused.output
    assert "has no 'tenios-api' limit: run `tenios-archive prefect apply`" in refused.words
    assert read_rate_limit() is None  # neither created it
    ledger = world.ledger()
    assert {ledger.get(u).state for u in uuids} == {State.PENDING}
    ledger.engine.dispose()


def test_apply_without_a_prefect_api_is_a_usage_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.setenv("TENIOS_S3_BUCKET", "b")
    refused = cli("prefect", "apply")
    assert refused.exit_code == 2, refused.output
    assert "no Prefect API configured" in refused.words
