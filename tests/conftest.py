"""Test-wide wiring: each real peer has its fixture module under tests/fixtures/."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.cli",
    "tests.fixtures.databases",
    "tests.fixtures.moto",
    "tests.fixtures.simulator",
    "tests.fixtures.sshd",
]
