"""Shared fixtures: real PostgreSQL databases, a migrated dbmon store in either backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import unit_tier_cluster
from tests.services import create_pg_database, drop_pg_database, missing, docker_available

_CLUSTER = pytest.StashKey[object]()


def pytest_configure(config):
    # Only the process that owns the run starts the cluster; pytest-xdist workers inherit its URL.
    if unit_tier_cluster.wanted() and not hasattr(config, "workerinput"):
        config.stash[_CLUSTER] = unit_tier_cluster.start()


def pytest_unconfigure(config):
    cluster = config.stash.get(_CLUSTER, None)
    if cluster is not None:
        cluster.stop()



@pytest.fixture(scope="session")
def deferred_drops():
    from tests.deferred_drops import DeferredDrops

    drops = DeferredDrops()
    yield drops
    drops.close()


@pytest.fixture()
def pg_database(deferred_drops):
    """A throwaway PostgreSQL database for one test: (name, url)."""
    name, url = create_pg_database()
    yield name, url
    deferred_drops.drop(name)


@pytest.fixture(scope="session")
def pg_store_url():
    """A migrated dbmon store on PostgreSQL for the whole session (SQLAlchemy URL)."""
    from monitor_app.store.migrate import upgrade

    name, url = create_pg_database("dbmon_store")
    sa_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    upgrade(sa_url)
    yield sa_url
    drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_store_url(request, tmp_path):
    """An empty, unmigrated store URL on each backend: for migration tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.sqlite3'}"
    return request.getfixturevalue("pg_database")[1].replace("postgresql://", "postgresql+psycopg2://", 1)


# Running the migrations costs far more than copying their result, so each session (each xdist
# worker) migrates once per backend: SQLite tests get a copy of a migrated file, PostgreSQL tests
# a database emptied after the previous test (tests/pg_store_pool.py).
@pytest.fixture(scope="session")
def sqlite_store_template(tmp_path_factory) -> Path:
    """A migrated SQLite file to copy; the migration's engine is closed, so no WAL is left beside it."""
    from monitor_app.store.migrate import upgrade

    path = tmp_path_factory.mktemp("store-template") / "dbmon.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_store_pool():
    from tests.pg_store_pool import PgStorePool

    pool = PgStorePool()
    yield pool
    pool.close()


@pytest.fixture()
def sqlite_store(tmp_path, sqlite_store_template):
    """A migrated SQLite store: for tests about a monitored system, not about the store."""
    from monitor_app.store import Store

    path = tmp_path / "dbmon.sqlite3"
    shutil.copyfile(sqlite_store_template, path)
    store = Store(f"sqlite:///{path}")
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A migrated, empty dbmon store on each backend."""
    from monitor_app.store import Store

    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    pool = request.getfixturevalue("pg_store_pool")
    s = Store(pool.acquire())
    yield s
    s.dispose()
    pool.release()


@pytest.fixture(scope="session")
def docker_engine():
    if not docker_available():
        missing("Docker engine (docker version failed)")
    import docker

    client = docker.from_env(timeout=30)
    yield client
    client.close()


@pytest.fixture(params=["embedded", "distributed"])
def deployment(request, tmp_path):
    """A migrated dbmon deployment in each mode; tests start the processes they need."""
    from tests.harness import Deployment

    d = Deployment(request.param, tmp_path)
    try:
        d.migrate()
        yield d
    finally:
        d.close()


# A test using one of these fixtures, directly or through another fixture, gets these marks, so the
# fast tier (`make test-fast`) leaves it out without each test saying so. Tests that start
# processes or clusters themselves carry the marks explicitly (see CONTRIBUTING.md).
MARKS_BY_FIXTURE = {
    "deployment": ("deployment", "slow"),
    "docker_engine": ("docker",),
    "exposed_cluster": ("slow",),
    "hardened_cluster": ("slow",),
    "tls_cluster": ("slow",),
    "files_cluster": ("slow",),
}


# The parameters that choose dbmon's own store. Their PostgreSQL variant is marked `pg_store`:
# `make test-fast` runs the embedded default (SQLite) only, `make test` and CI run both.
STORE_PARAMETERS = ("store", "blank_store_url")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in item.fixturenames:
            for mark in MARKS_BY_FIXTURE.get(fixture, ()):
                item.add_marker(mark)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(params.get(name) == "postgresql" for name in STORE_PARAMETERS):
            item.add_marker("pg_store")


@pytest.fixture()
def connection_budget(sqlite_store):
    """A process's share of monitored servers' connections, kept in a throwaway store."""
    from monitor_app.assets.connection_budget import ConnectionBudget

    return ConnectionBudget(sqlite_store)
