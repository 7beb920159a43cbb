"""Prefect flows: thin orchestration over tenios_io (nightly, backfill, audit)."""
