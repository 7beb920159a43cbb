"""The live clients of a process, found by plain data.

A task of a flow receives only plain data (a :class:`RunClients` key, claims, a batch
of recording uuids), never a live ``Pipeline``: whatever process the task runner puts
it in finds the pipeline here, built once per process and key.  The flow that opened
the run's pipeline lends it for the run (:func:`lend`), so tasks in its own process
share it; a task in another process (a process or Dask task runner) builds its own
the first time and keeps it until the process exits.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

from tenios_io.run.pipeline import Pipeline


@dataclass(frozen=True)
class RunClients:
    """What names a run's clients: the config file its settings come from (None: the
    environment), the actor its custody events name, its concurrency and API rate."""

    config_file: str | None
    actor: str
    concurrency: int
    rate_limit: float | None = None
    in_flight: int | None = None
    """Recordings in the air at once (RunOptions.recordings; None: ``concurrency``)."""
    batches: int | None = None
    """Batches in flight (RunOptions.batches; None: ``concurrency``)."""


Opener = Callable[[RunClients], AbstractContextManager[Pipeline]]

_lock = threading.Lock()
_pipelines: dict[RunClients, Pipeline] = {}
_owned = ExitStack()


@contextmanager
def lend(key: RunClients, pipeline: Pipeline) -> Iterator[Pipeline]:
    """``pipeline`` is this process's for ``key`` while the block runs (the run's
    owner closes it afterwards)."""
    with _lock:
        _pipelines[key] = pipeline
    try:
        yield pipeline
    finally:
        with _lock:
            if _pipelines.get(key) is pipeline:
                del _pipelines[key]


def pipeline_for(key: RunClients, opener: Opener) -> Pipeline:
    """This process's pipeline for ``key``: the one lent, else one ``opener`` builds
    now (once per process and key; closed when the process exits)."""
    with _lock:
        found = _pipelines.get(key)
        if found is None:
            found = _owned.enter_context(opener(key))
            _pipelines[key] = found
        return found


@atexit.register
def _close_owned() -> None:
    _owned.close()
