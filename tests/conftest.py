"""Test-wide wiring: each real peer has its fixture module under tests/fixtures/."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures.cli",
    "tests.fixtures.databases",
    "tests.fixtures.fault_table",
    "tests.fixtures.moto",
    "tests.fixtures.prefect",
    "tests.fixtures.simulator",
    "tests.fixtures.sshd",
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
