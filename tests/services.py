"""Finding the real services tests need. Locally a missing service skips; with CI=true it fails."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("DBMON_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE = os.environ.get("CI", "").lower() == "true" or os.environ.get("DBMON_TEST_REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    """Fail in CI, skip elsewhere: a silent skip in CI would hide a broken environment."""
    if REQUIRE:
        pytest.fail(f"required service unavailable: {what}", pytrace=False)
    pytest.skip(f"service unavailable: {what}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_admin_connect():
    import psycopg2

    try:
        conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
    conn.autocommit = True
    return conn


def create_pg_database(prefix: str = "dbmon_test", template: str | None = None) -> tuple[str, str]:
    """A throwaway database, optionally a copy of `template` (which nobody may be connected to);
    returns (name, libpq URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = pg_admin_connect()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        # Throwaway: a commit need not wait for the WAL flush, which on a busy shared server is most
        # of what a store-heavy test waits for. Visibility and locking are unchanged.
        cur.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def role_name(prefix: str) -> str:
    """A role name no other test uses: roles are server-wide, and parallel workers share the server."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def drop_pg_database(name: str) -> None:
    conn = pg_admin_connect()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "version"], capture_output=True, timeout=20).returncode == 0


def table_names(url: str) -> set[str]:
    """The tables a store URL holds now (for migration tests)."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
