"""`tenios-archive prefect apply`: what the operator sets on the Prefect server once,
from configuration (see tenios_io/prefect_setup.py).  Only typer at module level."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The Prefect server's shared settings for tenios-archive, applied by the operator.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """The Prefect server's shared settings for tenios-archive, applied by the operator."""


@app.command()
def apply(ctx: typer.Context) -> None:
    """Make the Prefect server's `tenios-api` global rate limit what TENIOS_API_RATE_LIMIT
    says (requests per second, shared by every worker; unset: no limit). Runs use it
    and never change it: run this again after changing the setting.

    Exit 0 when applied; 2 when no Prefect API is configured or a setting is invalid."""
    from tenios_io.cli._common import console, settings
    from tenios_io.cli._prefect import prefect_api_url
    from tenios_io.exceptions import ConfigError

    cfg = settings(ctx)
    if prefect_api_url() is None:
        raise ConfigError("no Prefect API configured: set PREFECT_API_URL to the server's API")
    from tenios_io.prefect_setup import apply_rate_limit

    console.print(apply_rate_limit(cfg.api_rate_limit))
