# One venv, two entry points: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

LOCK := requirements.lock

# Some shells (container images among them) set this; without cached bytecode every test worker
# and every process a test starts compiles dbmon, its tests and their assertion rewrites again.
unexport PYTHONDONTWRITEBYTECODE
LOCK_VENV ?= .venv-lock

.PHONY: run install lock audit test test-fast test-compose bench lint clean compose-check postgres-versions

run: install
	$(VENV)/bin/dbmon up

install: $(VENV)/.installed

# Exactly the locked, hash-checked versions (runtime, test, alerts and lint extras); then dbmon itself,
# built with the locked setuptools instead of whatever the index offers at that moment. The lock is
# complete, so nothing is resolved again (--no-deps: pip 23 looks past the pin of a requirement with
# an extra, such as coverage[toml], to a newer release); `pip check` proves the set is consistent.
$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip check
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Re-resolve the lock from pyproject.toml (needs the package index). pip-tools runs in its own
# venv so it never changes the locked set it is resolving. Then refresh the advisory snapshot.
lock:
	test -x $(LOCK_VENV)/bin/python || python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q pip-tools
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	  --no-emit-index-url --no-emit-find-links --extra test --extra alerts --extra lint --output-file $(LOCK) pyproject.toml
	# The image's lock: runtime and alerts only, every pin taken from the full lock.
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	  --no-emit-index-url --no-emit-find-links --extra alerts --constraint $(LOCK) \
	  --output-file requirements-runtime.lock pyproject.toml

# Known vulnerabilities in the locked set (pip-audit, else the advisory snapshot) and bandit on the code.
audit: install
	$(PY) -m tools.vulnerability_audit --lock $(LOCK)

# ruff (default rules, bug-finding families, complexity ceiling 20: ruff.toml) and mypy on the
# domain core (mypy.ini). Either failing fails the gate.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Fails under 85% line coverage. With CI=true a missing service fails instead of skipping.
# Everything but compose, with coverage: the unit tier on parallel workers; the tiers that start
# processes or clusters on SLOW_WORKERS workers (two: their tests mostly wait on the processes
# they start); then the Docker tests one at a time (they share one engine, and discovery sees
# every container on it), all adding to the same coverage data.
SLOW_WORKERS ?= 2
# PostgreSQL 13, 14, 16 and 17 server builds for the version tests (15 is the system's), pinned by
# hash in tests/postgres_versions.json; without npm the version tests skip (fail in CI).
postgres-versions: install
	@if command -v npm >/dev/null; then $(PY) -m tests.postgres_versions; \
	else echo "npm not found: the PostgreSQL 13/14/16/17 tests will not run"; fi

test: install postgres-versions
	rm -f .coverage .coverage.*
	DBMON_TEST_PG=private $(PY) -m pytest -m "$(FAST_MARKERS)" -n $(FAST_WORKERS) --dist loadgroup --cov --cov-report= $(PYTEST_ARGS)
	$(PY) -m pytest -m "not compose and not docker and not ($(FAST_MARKERS))" -n $(SLOW_WORKERS) --cov --cov-append \
		--cov-report= $(PYTEST_ARGS)
	$(PY) -m pytest -m "docker and not compose and not ($(FAST_MARKERS))" --cov --cov-append \
		--cov-report=term-missing:skip-covered --cov-fail-under=85 $(PYTEST_ARGS)

# test-fast is the loop run while coding: the unit tier with dbmon's own store on SQLite only (the
# `pg_store` variants, a third of the tier, run in `make test` and CI).
# The unit tier: every test not marked slow, docker, browser, deployment or compose (tests/conftest.py
# marks them by the fixtures they use), on parallel workers, without coverage. The tests wait on
# PostgreSQL and sockets more than they compute, hence two workers per core; FAST_WORKERS=0 runs serially.
# DBMON_TEST_PG=private: the tier runs on its own PostgreSQL cluster, fsync off (tests/unit_tier_cluster.py).
FAST_MARKERS := not slow and not docker and not browser and not deployment and not compose
FAST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test-fast: install
	DBMON_TEST_PG=private $(PY) -m pytest -m "$(FAST_MARKERS) and not pg_store" -n $(FAST_WORKERS) --dist loadgroup -x -q $(PYTEST_ARGS)

# Builds the image on a local bookworm base and runs the compose deployment end to end (minutes).
test-compose: install
	$(PY) -m pytest -m compose -q -s tests/compose $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.run_all

# Compose refuses to start without the shared secret key; a placeholder is enough to check the file.
compose-check:
	DBMON_SECRET_KEY=check docker-compose -f docker-compose.yml config -q

clean:
	rm -rf var .coverage .coverage.* htmlcov .pytest_cache
