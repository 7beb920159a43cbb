"""The fault matrix's SFTP and database rows drive whole runs: the acceptance world
(simulator over HTTP, moto, a real ledger, a Prefect server) and its real sshd drop."""

from __future__ import annotations

from tests.acceptance.conftest import drop, pg_world, world

__all__ = ["drop", "pg_world", "world"]
