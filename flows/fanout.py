"""A run fanned out over the work pool: the parent does what comes first (import a
backfill file, sweep the drop), starts ``workers`` `archive-worker` flow runs with
``run_deployment``, watches them and the shared ledger until the work is done, then
checkpoints the custody chain once and publishes one summary aggregating theirs.

A worker that dies leaves its claims leased until the lease ends; the others (or a
replacement the parent starts when none is left) take them over.  A worker run still
open when the ledger has had nothing left to do for a while is named lost (crashed)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.deployments import run_deployment
from prefect.states import Cancelling, Crashed

from flows.alerts import report_backlog
from flows.archiving import checkpoint_chain, open_clients, run_actor
from flows.worker import RESULT_KEY
from tenios_io.config import load_settings
from tenios_io.ledger.stats import collect, probe
from tenios_io.ops.monitoring import markdown
from tenios_io.run import clients, fanout
from tenios_io.run.clients import RunClients
from tenios_io.run.interrupt import Interruption
from tenios_io.run.pipeline import Pipeline

#: The deployment a fanned-out run starts its workers from (prefect.yaml).
WORKER_DEPLOYMENT = "archive-worker/archive-worker"
#: How often the parent looks at its workers' states and the ledger.
POLL_SECONDS = 2.0
#: A started worker run that holds no lease while work is left, or is still open while
#: nothing is left, is given at least this long (start-up, its last batch) before the
#: parent replaces it or names it lost.
MIN_GRACE_SECONDS = 60.0


def worker_parameters(
    concurrency: int | None,
    batch_size: int,
    limit: int | None,
    time_budget_minutes: float | None,
    max_wait_seconds: float,
    in_flight: int | None = None,
) -> dict[str, Any]:
    """What each archive worker of a fanned-out run is started with."""
    return {
        "in_flight": in_flight,
        "concurrency": concurrency,
        "batch_size": batch_size,
        "limit": limit,
        "time_budget_minutes": time_budget_minutes,
        "max_wait_seconds": max_wait_seconds,
    }


def run_fanned_out(
    flow_name: str,
    *,
    workers: int,
    config_file: str | None,
    rate_limit: float | None,
    worker_parameters: dict[str, Any],
    before: Callable[[RunClients], dict[str, Any]],
) -> dict[str, Any]:
    """The parent's body: ``before``, the workers, the checkpoint, the artifacts."""
    settings = load_settings(config_file)
    rate = rate_limit if rate_limit is not None else settings.api_rate_limit
    run = RunClients(config_file=config_file, actor=run_actor(flow_name), concurrency=2)
    # SIGINT / SIGTERM (Prefect's cancellation of this run): the sweep or import ends
    # early, and the worker runs are cancelled too; each stops cleanly (their flows).
    interruption = Interruption(notify=get_run_logger().warning)
    interruption.looping = True  # a second signal: the watch stops waiting (no raise)
    with (
        interruption.installed(),
        open_clients(run) as pipeline,
        clients.lend(run, pipeline),
    ):
        pipeline.preflight()
        pipeline.stop = interruption.stop
        extra = before(run)
        parameters = {**worker_parameters, "rate_limit": rate, "config_file": config_file}
        summary = watch_workers(
            pipeline,
            workers=0 if interruption.stop.is_set() else workers,
            parameters=parameters,
            grace_seconds=max(2 * settings.lease_seconds, MIN_GRACE_SECONDS),
            interruption=interruption,
        )
        if interruption.signal is None:
            extra["checkpoint"] = checkpoint_chain(run)
        backlog = collect(pipeline.ledger, pipeline.ledger.clock_now())
    report_backlog(backlog, alert_hours=settings.alert_oldest_due_hours)
    create_table_artifact(
        key=f"{flow_name}-summary",
        table=fanout.run_summary_table(summary),
        description="This run's totals over its worker runs (per worker: the -workers artifact).",
    )
    create_table_artifact(
        key=f"{flow_name}-workers",
        table=fanout.table(summary),
        description="Per archive worker: recordings, bytes, rate, failures; crashed ones named.",
    )
    create_markdown_artifact(
        key=f"{flow_name}-ledger",
        markdown=markdown(backlog),
        description="`ledger stats` after this run.",
    )
    logger = get_run_logger()
    if summary["crashed"]:
        logger.error("worker run(s) crashed: %s", ", ".join(summary["crashed"]))
    exit_code = (
        1 if summary["failures"] or any(w.get("exit_code") for w in summary["per_worker"]) else 0
    )
    if interruption.signal is not None:
        return {
            **summary,
            **extra,
            "exit_code": interruption.exit_code,
            "signal": interruption.signal.name,
            "stopped": {
                "message": f"run stopped: interrupted by {interruption.signal.name}: the "
                "worker runs were cancelled (each gave back what it had not archived); run "
                "it again to continue"
            },
        }
    return {**summary, **extra, "exit_code": exit_code}


def watch_workers(
    pipeline: Pipeline,
    *,
    workers: int,
    parameters: dict[str, Any],
    grace_seconds: float,
    deployment: str = WORKER_DEPLOYMENT,
    interruption: Interruption | None = None,
) -> dict[str, Any]:
    """Start ``workers`` worker runs, wait until they ended and the ledger has nothing
    left (starting replacements when work is left that no live lease holds), and
    return the aggregate of their summaries.  Once ``interruption`` stops the run, the
    worker runs still open are cancelled (each stops cleanly: its claims finish or go
    back) and the parent waits until they have ended; a second signal: not even that."""
    started = time.monotonic()
    names: dict[UUID, tuple[str, bool]] = {}
    lost: set[UUID] = set()

    def start(replacement: bool) -> None:
        child = run_deployment(deployment, parameters=parameters, timeout=0, as_subflow=True)
        names[child.id] = (child.name, replacement)

    for _ in range(workers):
        start(False)
    watch = fanout.Watch(workers=workers, grace_seconds=grace_seconds)
    stop = interruption.stop if interruption is not None else threading.Event()
    cancelled: set[UUID] = set()
    with get_client(sync_client=True) as client:
        while True:
            open_runs, starting = [], False
            for run_id in names:
                state = client.read_flow_run(run_id).state
                if state is None or not state.is_final():
                    open_runs.append(run_id)
                    starting = (
                        starting or state is None or state.is_scheduled() or (state.is_pending())
                    )
            if stop.is_set():
                if not open_runs or (interruption is not None and interruption.abort):
                    break
                for run_id in set(open_runs) - cancelled:
                    client.set_flow_run_state(
                        run_id, Cancelling(message="its parent run was cancelled")
                    )
                    cancelled.add(run_id)
                stop.wait(POLL_SECONDS)
                continue
            # A light probe (three EXISTS), not the whole backlog's counts, every look.
            work = probe(pipeline.ledger, pipeline.ledger.clock_now())
            step = watch.next(
                open_runs=len(open_runs), starting=starting, probe=work, now=time.monotonic()
            )
            if step == "done":
                break
            if step == "replace":
                start(True)
            elif step == "lost":
                lost.update(open_runs)
                for run_id in open_runs:
                    client.set_flow_run_state(
                        run_id,
                        Crashed(message="lost: held no lease while work was done or due"),
                        force=True,
                    )
                break
            stop.wait(POLL_SECONDS)  # polling the Prefect server between looks
        summaries = _summaries(client, list(names))
        ended = []
        for run_id, (name, replacement) in names.items():
            state = client.read_flow_run(run_id).state
            ended.append(
                fanout.WorkerRun(
                    name=name,
                    flow_run_id=str(run_id),
                    state=state.name if state is not None else "unknown",
                    summary=None if run_id in lost else summaries.get(run_id),
                    replacement=replacement,
                )
            )
    return fanout.aggregate(ended, time.monotonic() - started)


def _summaries(client: Any, run_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Each worker run's plain summary, from its result artifact."""
    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[RESULT_KEY]),
            flow_run_id=ArtifactFilterFlowRunId(any_=run_ids),
        )
    )
    out: dict[UUID, dict[str, Any]] = {}
    for artifact in found:
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        if artifact.flow_run_id is not None and rows:
            out[artifact.flow_run_id] = rows[0]
    return out


__all__ = ["WORKER_DEPLOYMENT", "run_fanned_out", "watch_workers", "worker_parameters"]
