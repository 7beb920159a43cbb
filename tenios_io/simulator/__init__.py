"""A faithful TENIOS record-call API simulator, with fault injection and SFTP-folder delivery.

For tests and the demo::

    from tenios_io.simulator import FaultPlan, Simulator, running_simulator

    sim = Simulator(access_key="k", faults=FaultPlan.parse("503=0.1,truncate=0.05"))
    uuids = sim.seed(10)
    with running_simulator(sim) as running:
        ...  # TENIOS_API_URL=running.url, TENIOS_ACCESS_KEY=running.access_key
        assert sha256(downloaded) == sim.expected_sha256(uuids[0])

Modules: :mod:`.app` (the API and its state), :mod:`.catalogue` (WAV audio as
streams), :mod:`.faults` (what goes wrong), :mod:`.delivery` (drop folder),
:mod:`.server` (uvicorn in a thread or the foreground).
"""

from __future__ import annotations

from tenios_io.simulator.app import (
    DEFAULT_ACCESS_KEY,
    RETRIEVE_CONTENT_TYPE,
    RequestRecord,
    Simulator,
)
from tenios_io.simulator.catalogue import AudioSpec, Recording
from tenios_io.simulator.delivery import DropFolder
from tenios_io.simulator.faults import FaultPlan
from tenios_io.simulator.server import (
    RunningSimulator,
    bind_socket,
    running_simulator,
    serve_forever,
)

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "RETRIEVE_CONTENT_TYPE",
    "AudioSpec",
    "DropFolder",
    "FaultPlan",
    "Recording",
    "RequestRecord",
    "RunningSimulator",
    "Simulator",
    "bind_socket",
    "running_simulator",
    "serve_forever",
]
