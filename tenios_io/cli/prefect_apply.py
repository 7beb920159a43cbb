"""`tenios-archive prefect apply`: what the operator sets on the Prefect server once,
from configuration (see tenios_io/ops/prefect_setup.py).  Only typer at module level."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="The Prefect server's shared settings for tenios-archive, applied by the operator.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """The Prefect server's shared settings for tenios-archive, applied by the operator."""


@app.command()
def apply(
    ctx: typer.Context,
    notify: Annotated[
        str | None,
        typer.Option(
            "--notify",
            help="Also create (or replace) the automations that notify through this Prefect "
            "notification block (TYPE-SLUG/NAME, e.g. slack-webhook/ops) when a nightly run "
            "fails or a run ends with the backlog overdue (TENIOS_ALERT_OLDEST_DUE_HOURS).",
            metavar="BLOCK",
        ),
    ] = None,
) -> None:
    """Make the Prefect server's `tenios-api` global rate limit what TENIOS_API_RATE_LIMIT
    says (requests per second, shared by every worker; unset: no limit). Runs use it
    and never change it: run this again after changing the setting.

    Exit 0 when applied; 2 when no Prefect API is configured, a setting is invalid or
    the notification block does not exist."""
    from tenios_io.cli._common import console, settings
    from tenios_io.cli._prefect import prefect_api_url
    from tenios_io.exceptions import ConfigError

    cfg = settings(ctx)
    if prefect_api_url() is None:
        raise ConfigError("no Prefect API configured: set PREFECT_API_URL to the server's API")
    from tenios_io.ops.prefect_setup import apply_automations, apply_rate_limit

    lines = apply_automations(notify) if notify is not None else []
    console.print(apply_rate_limit(cfg.api_rate_limit))
    for line in lines:
        console.print(line)
    if notify is None:
        console.print("automations: not applied (--notify BLOCK names the notification block)")
