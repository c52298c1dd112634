"""Shared fixtures: real PostgreSQL databases, a migrated dbmon store in either backend."""

from __future__ import annotations

import pytest

from tests.services import create_pg_database, drop_pg_database, missing, docker_available


@pytest.fixture()
def pg_database():
    """A throwaway PostgreSQL database for one test: (name, url)."""
    name, url = create_pg_database()
    yield name, url
    drop_pg_database(name)


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
def blank_store_url(request, tmp_path, pg_database):
    """An empty, unmigrated store URL on each backend: for migration tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.sqlite3'}"
    return pg_database[1].replace("postgresql://", "postgresql+psycopg2://", 1)


@pytest.fixture()
def sqlite_store(tmp_path):
    """A migrated SQLite store: for tests about a monitored system, not about the store."""
    from monitor_app.store import Store
    from monitor_app.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'dbmon.sqlite3'}"
    upgrade(url)
    store = Store(url)
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A migrated, empty dbmon store on each backend."""
    from monitor_app.store import Store
    from monitor_app.store.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dbmon.sqlite3'}"
        upgrade(url)
        s = Store(url)
        yield s
        s.dispose()
    else:
        name, url = create_pg_database("dbmon_store")
        sa_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
        upgrade(sa_url)
        s = Store(sa_url)
        yield s
        s.dispose()
        drop_pg_database(name)


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
