"""What the operator applies to a Prefect server once, from configuration: the TENIOS
API rate limit (the ``tenios-api`` global concurrency limit every run shares) and the
automations that notify when a nightly run fails or the backlog is overdue.

Runs only read what was applied (flows/limits.py); none creates or changes it, so
the limit is the operator's setting, not that of whichever run started last.
Prefect's ``prefect.yaml`` cannot declare a global concurrency limit (Prefect 3: UI,
CLI, SDK, API or Terraform only), hence ``tenios-archive prefect apply``.  Its
automations could be a file for ``prefect automation create --from-file``, but their
notification action names a block by id, which differs per server: built here from
the block's name instead.

Imported only where Prefect is used (the ``prefect`` command, the flows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from tenios_io.exceptions import ConfigError
from tenios_io.ops.monitoring import LEDGER_RESOURCE, OVERDUE_EVENT

LIMIT_NAME = "tenios-api"
APPLY_COMMAND = "tenios-archive prefect apply"


@dataclass(frozen=True)
class ServerRateLimit:
    """The server's ``tenios-api`` limit: ``per_second`` slots decay per second, at most
    ``burst`` taken at once."""

    per_second: float
    burst: int
    active: bool


def burst_of(rate: float) -> int:
    """Slots of the limit for ``rate`` requests/s: one second's worth, at least one."""
    return max(1, math.ceil(rate))


def read_rate_limit() -> ServerRateLimit | None:
    """The server's ``tenios-api`` limit (None: there is none)."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_global_concurrency_limit_by_name(LIMIT_NAME)
        except ObjectNotFound:
            return None
    return ServerRateLimit(
        per_second=float(found.slot_decay_per_second or 0.0),
        burst=found.limit,
        active=found.active,
    )


def apply_rate_limit(rate: float | None) -> str:
    """Make the server's ``tenios-api`` limit ``rate`` requests/s (None: no limit, the
    limit is deleted).  Returns what was done, for the operator."""
    current = read_rate_limit()
    with get_client(sync_client=True) as client:
        if rate is None:
            if current is None:
                return f"{LIMIT_NAME}: none (TENIOS_API_RATE_LIMIT unset)"
            client.delete_global_concurrency_limit_by_name(LIMIT_NAME)
            return f"{LIMIT_NAME}: deleted (TENIOS_API_RATE_LIMIT unset)"
        wanted = ServerRateLimit(per_second=rate, burst=burst_of(rate), active=True)
        if current == wanted:
            return f"{LIMIT_NAME}: {rate:g} requests/s (unchanged)"
        if current is None:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=LIMIT_NAME, limit=wanted.burst, slot_decay_per_second=rate, active=True
                )
            )
            return f"{LIMIT_NAME}: {rate:g} requests/s (created)"
        client.update_global_concurrency_limit(
            LIMIT_NAME,
            GlobalConcurrencyLimitUpdate(
                limit=wanted.burst, slot_decay_per_second=rate, active=True
            ),
        )
        return f"{LIMIT_NAME}: {rate:g} requests/s (was {current.per_second:g})"


def require_rate_limit(rate: float | None) -> ServerRateLimit | None:
    """The limit a run uses through Prefect: the server's, whatever ``rate`` this run's
    settings say (None: the server has none and the run sets none).

    A run whose settings ask for a rate on a server without the limit is a
    configuration error: the operator applies the limit once, runs never create it.
    """
    found = read_rate_limit()
    if found is None and rate is not None:
        raise ConfigError(
            f"a TENIOS API rate limit is set ({rate:g} requests/s) but the Prefect server "
            f"has no {LIMIT_NAME!r} limit: run `{APPLY_COMMAND}` once with "
            "TENIOS_API_RATE_LIMIT set (runs never create or change it)"
        )
    return found


NIGHTLY_FAILED = "tenios-archive: nightly run failed"
BACKLOG_OVERDUE = "tenios-archive: backlog overdue"


def automations(notify_block: UUID) -> list[AutomationCore]:
    """The two notifications, sent through the notification block ``notify_block``."""
    nightly_failed = AutomationCore(
        name=NIGHTLY_FAILED,
        description="A nightly-archive flow run ended Failed or Crashed.",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "flow",
                "prefect.resource.name": "nightly-archive",
            },
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=notify_block,
                subject="tenios-archive: nightly run {{ flow_run.name }} {{ flow_run.state.name }}",
                body="The nightly-archive flow run {{ flow_run.name }} ({{ flow_run.id }}) "
                "ended {{ flow_run.state.name }}: {{ flow_run.state.message }}\n"
                "Its artifacts say what failed; `tenios-archive ledger stats` shows the backlog.",
            )
        ],
    )
    backlog_overdue = AutomationCore(
        name=BACKLOG_OVERDUE,
        description="A run ended with a recording due for longer than "
        "TENIOS_ALERT_OLDEST_DUE_HOURS.",
        trigger=EventTrigger(
            match={"prefect.resource.id": LEDGER_RESOURCE},
            expect={OVERDUE_EVENT},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=notify_block,
                subject="tenios-archive: backlog overdue",
                body="The oldest due recording has waited {{ event.payload.oldest_due }} "
                "(alert after {{ event.payload.alert_hours }} h); {{ event.payload.due }} "
                "recordings are due. `tenios-archive ledger stats` for details.",
            )
        ],
    )
    return [nightly_failed, backlog_overdue]


def apply_automations(notify: str) -> list[str]:
    """Create (or replace) the automations, notifying through the block ``notify``
    (``block-type-slug/block-name``, e.g. ``slack-webhook/ops``).  What was done."""
    slug, _, name = notify.partition("/")
    if not slug or not name:
        raise ConfigError(f"--notify {notify!r}: give the block as TYPE-SLUG/NAME")
    done = []
    with get_client(sync_client=True) as client:
        try:
            block = client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise ConfigError(
                f"no notification block {notify!r} on the Prefect server "
                "(create it in the UI or with `prefect block create`)"
            ) from None
        for automation in automations(block.id):
            replaced = client.read_automations_by_name(automation.name)
            for old in replaced:
                client.delete_automation(old.id)
            client.create_automation(automation)
            done.append(f"{automation.name}: {'replaced' if replaced else 'created'} ({notify})")
    return done
