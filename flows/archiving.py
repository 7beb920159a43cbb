"""What the archiving flows share: the batch, sweep and checkpoint as Prefect tasks,
and the run of :func:`tenios_io.run.session.run_archive` with batches submitted to the
flow's bounded task runner.  Logic lives in tenios_io; this only orchestrates.

The tasks take plain data (a :class:`~tenios_io.run.clients.RunClients` key, claims),
never live clients, so any Prefect task runner can run them: each process finds its
clients through :mod:`tenios_io.run.clients` (the flow lends its own for the run; another
process builds them once)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import get_run_context
from prefect.exceptions import Abort
from prefect.futures import PrefectFuture
from prefect.states import Cancelled

from flows.alerts import report_backlog
from flows.limits import api_rate_limiter
from tenios_io.config import load_settings
from tenios_io.exceptions import is_transient
from tenios_io.ledger import Claim
from tenios_io.ops.monitoring import markdown
from tenios_io.recording.spool import remove_own_spools
from tenios_io.run import clients, session
from tenios_io.run.archiver import Archiver, Outcome, RecordingResult
from tenios_io.run.clients import RunClients
from tenios_io.run.interrupt import Interruption, RunInterrupted
from tenios_io.run.loop import BatchNotStarted, RunSummary
from tenios_io.run.options import MAX_CONCURRENCY, RunOptions
from tenios_io.run.pipeline import Pipeline, open_pipeline
from tenios_io.run.session import RETRIES, RETRY_DELAYS_SECONDS, checkpoint_step, sweep_step


def only_transient(_task: Any, _run: TaskRun, state: State) -> bool:
    """Prefect retries a crashed batch only when its error is Transient."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the question is only "transient?"
        return is_transient(exc)
    return False


#: Options of every task that Prefect may retry: only Transient errors, no caching (the
#: ledger, not Prefect's result cache, is the idempotency record).
RETRIED_TASK: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": list(RETRY_DELAYS_SECONDS),
    "retry_condition_fn": only_transient,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}

FlowResult = dict[str, Any] | State[dict[str, Any]]
"""What an archiving flow returns: its summary, or a Cancelled state holding it."""

__all__ = [
    "MAX_CONCURRENCY",
    "RETRIED_TASK",
    "FlowResult",
    "flow_end",
    "pipeline_of",
    "run_actor",
    "run_archive",
    "sweep_sftp",
]


@contextmanager
def open_clients(key: RunClients) -> Iterator[Pipeline]:
    """Build the clients ``key`` names (its settings, actor, concurrency, rate limit)."""
    settings = load_settings(key.config_file)
    rate = key.rate_limit if key.rate_limit is not None else settings.api_rate_limit
    with open_pipeline(
        settings,
        actor=key.actor,
        concurrency=key.concurrency,
        in_flight=key.in_flight,
        batches=key.batches,
        before_request=api_rate_limiter(rate),
    ) as pipeline:
        yield pipeline


def pipeline_of(run: RunClients) -> Pipeline:
    """This process's clients for ``run`` (built on first use in a process)."""
    return clients.pipeline_for(run, open_clients)


@task(name="archive-batch", **RETRIED_TASK)
def archive_batch(
    run: RunClients, claims: list[Claim], deadline: float | None
) -> list[RecordingResult]:
    """Archive one claimed batch (re-running it is safe: the ledger fences it)."""
    return pipeline_of(run).archiver.archive_batch(claims, deadline=deadline)


@task(name="sftp-sweep", **RETRIED_TASK)
def sweep_sftp(run: RunClients) -> dict[str, Any] | None:
    """Register what the SFTP drop holds and finish pending releases (None: no drop)."""
    return sweep_step(pipeline_of(run), run.actor)


@task(name="custody-checkpoint", **RETRIED_TASK)
def checkpoint_chain(run: RunClients) -> dict[str, Any]:
    """Verify the chain since the last checkpoint and pin its head in the bucket."""
    return checkpoint_step(pipeline_of(run), run.actor)


def task_submitter(run: RunClients) -> session.Submit:
    """Each batch as an ``archive-batch`` task on the flow's task runner, given only
    plain data; its results as a plain future."""

    def submit(
        _archiver: Archiver, claims: list[Claim], deadline: float | None
    ) -> Future[list[RecordingResult]]:
        out: Future[list[RecordingResult]] = Future()

        def settle(done: PrefectFuture[list[RecordingResult]]) -> None:
            try:
                result = done.result(raise_on_failure=False)
            except Abort as exc:
                # Prefect refused the task's Running state (its flow run is being
                # cancelled): the batch did not start.  Its claims are given back; had
                # it written an outcome, the ledger would fence the release.
                out.set_exception(BatchNotStarted(str(exc)))
                return
            except BaseException as exc:  # noqa: BLE001 - the loop must hear of every batch
                out.set_exception(exc)
                return
            if isinstance(result, list):
                out.set_result(result)
            elif isinstance(result, BaseException):
                out.set_exception(result)
            else:
                out.set_exception(RuntimeError(str(result)))

        archive_batch.submit(run, claims, deadline).add_done_callback(settle)
        return out

    return submit


def run_actor(flow_name: str) -> str:
    """Who the custody events name: the flow run and the host."""
    try:
        run_id = str(get_run_context().flow_run.id)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - outside a flow run (plain-function tests)
        run_id = "local"
    return f"prefect:{flow_name}:{run_id}@{socket.gethostname()}"


def publish_summary(summary: RunSummary, *, key: str) -> None:
    """The run's summary table and its failures as Prefect artifacts."""
    create_table_artifact(
        key=f"{key}-summary",
        table=summary.table(),
        description="Recordings per outcome, bytes archived and throughput of this run.",
    )
    create_markdown_artifact(
        key=f"{key}-failures",
        markdown=summary.failures_markdown(),
        description="Recordings that ended failed, missing or conflict, with reasons.",
    )
    get_run_logger().info(
        "archived %s recordings (%s bytes) in %.1f s",
        summary.counts.get(Outcome.ARCHIVED.value, 0),
        summary.bytes_archived,
        summary.seconds,
    )


def run_archive(
    flow_name: str,
    options: RunOptions,
    *,
    config_file: str | None,
    before: Callable[[RunClients], dict[str, Any]],
    checkpoint: bool = True,
) -> dict[str, Any]:
    """The body of an archiving flow: the library's run with batches as tasks, then
    the summary, failures and ledger stats as artifacts.  Returns the summary plus
    what ``before`` returned (it gets the run's clients key).  ``checkpoint=False``:
    an archive worker of a fanned-out run, whose parent checkpoints once at the end.

    SIGINT and SIGTERM during the run are the run's (tenios_io.run.interrupt), and so is
    Prefect's cancellation of the flow run, which a worker or ``flow.serve`` delivers
    as SIGTERM to the run's process group (after a 30 s grace, SIGKILL): the run
    stops claiming, lets the recordings in flight finish (10 s grace) or gives their
    claims back, records one ``run_stopped`` event and publishes its summary; the
    result then names the ``signal`` and the flow ends Cancelled (:func:`flow_end`)."""
    settings = load_settings(config_file)
    options = options.with_in_flight(
        settings.in_flight, setting_given="in_flight" in settings.model_fields_set
    )
    rate = options.rate_limit if options.rate_limit is not None else settings.api_rate_limit
    run = RunClients(
        config_file=config_file,
        actor=run_actor(flow_name),
        concurrency=options.concurrency,
        rate_limit=rate,
        in_flight=options.recordings,
        batches=options.batches,
    )
    logger = get_run_logger()
    interruption = Interruption(notify=logger.warning)
    try:
        with interruption.installed():
            result = session.run_archive(
                settings,
                options,
                actor=run.actor,
                submit=task_submitter(run),
                before=lambda _pipeline, _actor: before(run),
                checkpoint=lambda _pipeline, _actor: (
                    checkpoint_chain(run)
                    if checkpoint
                    else {"skipped": "the parent run checkpoints"}
                ),
                before_request=api_rate_limiter(rate),
                stats=True,
                lend=lambda pipeline: clients.lend(run, pipeline),
                interruption=interruption,
            )
    except RunInterrupted as exc:
        message = f"{exc}: no claim was held; run it again"
        return {"interrupted": message, "exit_code": exc.exit_code, "signal": exc.signal.name}
    finally:
        remove_own_spools(settings.spool_dir)
    if result.summary.stopped is not None:
        logger.error("%s", result.summary.stop_message)
    publish_summary(result.summary, key=flow_name)
    if result.backlog is not None:
        if checkpoint:  # a fanned-out run's parent reports it once, not every worker
            report_backlog(result.backlog, alert_hours=settings.alert_oldest_due_hours)
        create_markdown_artifact(
            key=f"{flow_name}-ledger",
            markdown=markdown(result.backlog),
            description="`ledger stats` after this run.",
        )
    out = result.to_dict()
    if interruption.signal is not None:
        out["signal"] = interruption.signal.name
        if result.summary.stopped is None:  # the signal came after the last batch
            out["exit_code"] = interruption.exit_code
    return out


def flow_end(result: dict[str, Any], value: Any = None) -> FlowResult:
    """What an archiving flow returns: ``value`` (default: the run's ``result``), in a
    Cancelled state when a signal or Prefect's cancellation stopped the run."""
    value = result if value is None else value
    if not result.get("signal"):
        return value
    stopped = result.get("stopped") or {}
    message = (
        stopped.get("message")
        or result.get("interrupted")
        or (f"interrupted by {result['signal']} after the last batch")
    )
    return Cancelled(message=message, data=value)
