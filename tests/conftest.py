"""Test-wide wiring: each real peer has its fixture module under tests/fixtures/."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 (and LINES) in their environment: the
    # CLI's Rich console, built when tenios_io.cli is imported below, would keep that width
    # for good, where a test sets COLUMNS for its own output. As in one pytest process,
    # the width is left to the terminal and to each test.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.cli",
    "tests.fixtures.custody",
    "tests.fixtures.databases",
    "tests.fixtures.fault_table",
    "tests.fixtures.moto",
    "tests.fixtures.prefect",
    "tests.fixtures.simulator",
    "tests.fixtures.sshd",
    "tests.fixtures.witness",
]


@pytest.fixture(autouse=True)
def _library_log_level_restored() -> Iterator[None]:
    """An in-process `run nightly` sets the library's console level to ERROR (right for
    the CLI's own process); tests after it in this process read the library's INFO and
    WARNING records with caplog, so every test starts and ends at the level it found."""
    library = logging.getLogger("tenios_io")
    level = library.level
    yield
    library.setLevel(level)
