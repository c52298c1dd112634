# One venv, two entry points: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run install test test-fast bench lint clean compose-check

run: install
	$(VENV)/bin/dbmon up

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,alerts]'
	touch $@

# Fails under 85% line coverage. With CI=true a missing service fails instead of skipping.
test: install
	rm -f .coverage .coverage.*
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=85 $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -x -q $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.run_all

compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf var .coverage .coverage.* htmlcov .pytest_cache
