"""Whether a CLI run goes through Prefect, and how: quiet settings, the flow to call.

A run goes through Prefect only when a Prefect API is configured (``PREFECT_API_URL``
in the environment or in the active Prefect profile): it then appears on that
server with its artifacts.  Otherwise the CLI runs the same loop in its own process
(tenios_io.run.session) and neither imports Prefect nor starts its ephemeral server.

The flows live in the ``flows`` package, which this library never imports by name:
the project's metadata names them (entry points ``tenios_archive.flows`` in
pyproject.toml) and they are loaded from there.
"""

from __future__ import annotations

import logging
import os
import signal
import tomllib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from tenios_io.exceptions import ConfigError

FLOW_ENTRY_POINTS = "tenios_archive.flows"


def prefect_api_url() -> str | None:
    """The configured Prefect API (None: none), read without importing Prefect: the
    environment first, then the active profile of ``$PREFECT_HOME/profiles.toml``."""
    if "PREFECT_API_URL" in os.environ:
        return os.environ["PREFECT_API_URL"] or None
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    value = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(value) if value else None


def load_flow(name: str) -> Callable[..., dict[str, Any]]:
    """The Prefect flow ``name`` (``nightly-archive``, ``backfill``) of this install."""
    for entry in entry_points(group=FLOW_ENTRY_POINTS):
        if entry.name == name:
            flow: Callable[..., dict[str, Any]] = entry.load()
            return flow
    raise ConfigError(
        f"PREFECT_API_URL is set but the Prefect flow {name!r} is not installed "
        "(reinstall tenios-archive, or unset PREFECT_API_URL to run without Prefect)"
    )


def call_flow(flow: Callable[..., Any], args: dict[str, Any]) -> dict[str, Any]:
    """Call an archiving flow in this process and return its summary, also when the
    flow ended Cancelled (a signal stopped it: the summary is the state's result).
    A flow stopped before it claimed anything raises :class:`RunInterrupted`."""
    from tenios_io.run.interrupt import RunInterrupted

    state = flow(**args, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if isinstance(result, dict) and "interrupted" in result:
        raise RunInterrupted(signal.Signals(int(result["exit_code"]) - 128))
    if not isinstance(result, dict):
        raise RuntimeError(f"the flow ended {state.type.value}: {state.message}")
    return result


def prepare_logging(verbose: bool) -> None:
    """Logging for a run without Prefect: warnings (INFO with --verbose) on stderr;
    the library's own per-recording retries only with --verbose (they are in the
    ledger and the summary; on the console they would push the progress bar around)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("tenios_io").setLevel(logging.ERROR)


def prepare_prefect(verbose: bool) -> None:
    """Set Prefect's defaults for CLI runs, before Prefect is imported.

    WARNING-level logging for bulk runs (INFO halves task throughput, measured),
    no analytics, and a generous start-up timeout for an ephemeral server on a busy
    machine.  Values the operator set explicitly are left alone.
    """
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "INFO" if verbose else "ERROR")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_UVICORN_LEVEL", "ERROR")
        # Retries the library handled itself are in the ledger and the summary; on the
        # console they would only push the progress bar around.
        logging.getLogger("tenios_io").setLevel(logging.ERROR)
