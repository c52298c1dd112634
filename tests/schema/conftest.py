"""Helpers for schema tests: run DDL on a throwaway PostgreSQL database and diff around it."""

from __future__ import annotations

import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import pytest

from monitor_app.schema.postgres_snapshot import take_snapshot
from tests.schema.input_forms import diff_files, diff_every_way, save_snapshot
from tests.services import PG_ADMIN_URL, drop_pg_database, pg_admin_connect


# Statistics of the tables a scenario made: the whole-database ANALYZE would also re-read every
# system catalogue, which costs more than the scenario itself.
USER_TABLES = """SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'"""


class PgScratch:
    def __init__(self, url: str, drops=None):
        self.url = url
        # Frozen copies go to the session's background drops when there are any: DROP DATABASE waits
        # for a checkpoint of the shared server, which no scenario needs to wait for.
        self.drops = drops
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    def run(self, *statements: str) -> None:
        with self.conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def snapshot(self) -> dict:
        return take_snapshot(self.url)

    def changes(self, *statements: str, setup: tuple[str, ...] = (), every_form: bool = True) -> list[dict]:
        """Run `setup`, snapshot, run `statements`, snapshot again, return the diff: the same
        through two files, a file and the database, and a frozen copy and the database.

        `every_form=False` diffs the two files only: for suites about what a change is rated,
        whose changes the diff suites already take through every form. Freezing a copy is most
        of a scenario's cost."""
        self.run(*setup)
        # A copy starts with empty statistics: fresh estimates make the copy's row counts this database's.
        self.analyze()
        with tempfile.TemporaryDirectory() as workdir:
            old_file = save_snapshot(self.url, Path(workdir) / "old.json")
            if not every_form:
                self.run(*statements)
                self.analyze()
                return diff_files(old_file, save_snapshot(self.url, Path(workdir) / "new.json"))
            frozen, frozen_url = self._freeze()
            try:
                self.run(*statements)
                self.analyze()
                new_file = save_snapshot(self.url, Path(workdir) / "new.json")
                return diff_every_way(old_file=old_file, new_file=new_file, old_dsn=frozen_url, new_dsn=self.url)
            finally:
                if self.drops is not None:
                    self.drops.drop(frozen)
                else:
                    drop_pg_database(frozen)

    def analyze(self) -> None:
        with self.conn.cursor() as cur:
            # Row counts a committed INSERT has not yet flushed to the shared statistics would be
            # added on top of ANALYZE's count when they do, doubling n_live_tup; flush them first.
            cur.execute("SELECT pg_stat_force_next_flush()")
            cur.execute(USER_TABLES)
            tables = cur.fetchone()[0]
            if tables:
                cur.execute(f"ANALYZE {tables}")  # nosec B608 - names quoted by format('%I')

    def _freeze(self) -> tuple[str, str]:
        """A copy of this database as it is now, OIDs included (CREATE DATABASE ... TEMPLATE)."""
        base, name = self.url.rsplit("/", 1)
        frozen = f"dbmon_test_frozen_{uuid.uuid4().hex[:10]}"
        self.conn.close()  # a template must have no other sessions
        admin = pg_admin_connect()
        try:
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{frozen}" TEMPLATE "{name}"')
        finally:
            admin.close()
            self.conn = psycopg2.connect(self.url)
            self.conn.autocommit = True
        return frozen, f"{base}/{frozen}"

    def close(self) -> None:
        self.conn.close()


class SqliteFile:
    def __init__(self, path):
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)

    def changes(self, script: str) -> list[dict]:
        """The diff around `script`, the same through two files, a file and the database, and a
        copy and the database."""
        workdir = self.path.parent
        frozen = sqlite3.connect(workdir / "before.db")
        self.conn.backup(frozen)
        frozen.close()
        old_file = save_snapshot(f"sqlite:///{self.path}", workdir / "old.json")
        self.conn.executescript(script)
        new_file = save_snapshot(f"sqlite:///{self.path}", workdir / "new.json")
        return diff_every_way(old_file=old_file, new_file=new_file, old_dsn=f"sqlite:///{workdir / 'before.db'}",
                              new_dsn=f"sqlite:///{self.path}")


def caught_up(delivered: list, timeout: float = 5.0) -> None:
    """Wait for the catch-up batch a listener reports each time it starts listening, then forget
    it, so that `delivered` collects only what the test's own statements cause."""
    deadline = time.monotonic() + timeout
    while not delivered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert delivered, "the listener reported no catch-up batch on starting"
    delivered.clear()


@pytest.fixture()
def pg(pg_database, deferred_drops):
    scratch = PgScratch(pg_database[1], deferred_drops)
    yield scratch
    scratch.close()


def one(changes: list[dict], **match) -> dict:
    """The single change matching all given fields; fails listing what there was otherwise."""
    found = [c for c in changes if all(c.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one change matching {match}, got {changes}"
    return found[0]


def brief(changes: list[dict]) -> set[tuple]:
    return {(c["action"], c["object_type"], c["object"]) for c in changes}


def make_runtime(store, tmp_path, config: dict | None = None):
    """A Runtime over an already migrated store, with a config file holding `config`."""
    import yaml

    from monitor_app.platform.runtime import Runtime
    from monitor_app.config.settings import load_settings

    config_file = tmp_path / "dbmon.yaml"
    config_file.write_text(yaml.safe_dump(config or {}))
    settings = load_settings(data_dir=tmp_path, database_url=store.url, config_file=config_file,
                             secret_key="test-secret")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store  # share the fixture's engine instead of opening a second pool
    return rt


def add_asset(store, *, name: str, engine: str, connection: dict) -> int:
    from monitor_app.store.models import Asset

    with store.session() as s:
        asset = Asset(kind="database", engine=engine, name=name, source="config", external_id=name,
                      labels={}, connection=connection, details={}, status="up")
        s.add(asset)
        s.flush()
        return asset.id


def pg_connection(url: str, user: str = "postgres") -> dict:
    """An asset's `connection` for a libpq URL of the test server."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return {"host": parsed.hostname, "port": parsed.port or 5432, "database": parsed.path.lstrip("/"),
            "user": user, "sslmode": "disable",
            # The shared test server is trust-auth without TLS: opted out explicitly.
            "insecure": True}


class OwnedDatabase:
    """A throwaway database owned by a plain (non-superuser) role, as a hosting customer has;
    the `owned` fixture drops both."""

    def __init__(self):
        suffix = uuid.uuid4().hex[:8]
        self.owner, self.name = f"dbmon_owner_{suffix}", f"dbmon_test_owned_{suffix}"
        admin = pg_admin_connect()
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {self.owner} LOGIN")
            cur.execute(f'CREATE DATABASE "{self.name}" OWNER {self.owner}')
        admin.close()
        self.url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.name}"

    def connect(self, user: str = "postgres"):
        conn = psycopg2.connect(self.url, user=user)
        conn.autocommit = True
        return conn

    def run(self, *statements: str, user: str = "postgres") -> None:
        conn = self.connect(user)
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def value(self, sql: str):
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone()[0]
        finally:
            conn.close()

    def owner_is_superuser(self) -> bool:
        # Spelled out in full: some tests let the owner shadow `=` for every session.
        return self.value(f"SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) '{self.owner}'")


@pytest.fixture()
def owned(deferred_drops):
    db = OwnedDatabase()
    yield db
    deferred_drops.drop(db.name, owner=db.owner)


@pytest.fixture()
def audited_store(store, tmp_path, monkeypatch):
    """Trigger changes are audited, so the CLI needs dbmon's own store."""
    from monitor_app.config.settings import get_settings

    monkeypatch.setenv("DBMON_DATABASE_URL", store.url)
    monkeypatch.setenv("DBMON_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()
