# Every target bootstraps .venv from uv.lock (installing uv from PyPI when it is missing).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
RUN := $(VENV)/bin

.PHONY: venv check test lint typecheck pytest demo bench clean go-deps system-deps

$(UV):
	$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet uv

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-groups --python $(PYTHON)
	touch $@

venv: $(VENV)/.synced

lint: venv
	$(RUN)/ruff check tenios_io flows tests bench migrations
	$(RUN)/ruff format --check tenios_io flows tests bench migrations
	$(RUN)/lint-imports

typecheck: venv
	$(RUN)/mypy

# Tests run in parallel worker processes (pytest-xdist): many wait on real peers and
# child processes; worksteal lets an idle worker take tests queued for a busy one, so
# the long ones do not end up last. `pytest path::name` alone runs in-process.
PYTEST_WORKERS ?= 4

pytest: venv
	$(RUN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The fast tier, for every change (under 3 minutes on two cores): lint, then every
# test that needs neither PostgreSQL nor the Prefect server and is not marked slow:
# unit, integration and migration on SQLite, and the end-to-end runs that go without
# Prefect. `make test` runs every tier.
check: lint
	$(RUN)/pytest -n $(PYTEST_WORKERS) --dist worksteal \
		-m "not slow and not postgres and not prefect" $(PYTEST_ARGS)

# sshd, Chromium and Go (the Go interop test builds a verifier with sumdb/tlog and
# sumdb/note, offline, from Debian's packages): installed on Debian as root, otherwise
# the script stops at once with the command to run. CI (.ci/run) calls the same script.
system-deps:
	@.ci/install-system-deps

go-deps: system-deps

test: lint typecheck system-deps pytest

demo: venv
	$(RUN)/tenios-archive demo

bench: venv
	$(RUN)/python -m bench

clean:
	rm -rf $(VENV) .tools demo .pytest_cache .mypy_cache .ruff_cache
