"""Running flows from the CLI: quiet, ephemeral-friendly Prefect settings."""

from __future__ import annotations

import logging
import os


def prepare_prefect(verbose: bool) -> None:
    """Set Prefect's defaults for CLI runs, before Prefect is imported.

    WARNING-level logging for bulk runs (INFO halves task throughput, measured),
    no analytics, and a generous start-up timeout for the ephemeral server on a busy
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
