"""Roles and the public schema's ACL, on a throwaway database of the shared server."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import psycopg2
import pytest

from monitor_app.posture.evaluate import evaluate
from monitor_app.posture.facts import collect
from tests.posture.conftest import release_list_for
from tests.services import pg_admin_connect


def findings(url: str) -> set[str]:
    conn = psycopg2.connect(url)
    try:
        facts = collect(conn, same_host=False)
    finally:
        conn.close()
    result = evaluate(facts, release_list_for(facts["server_version_num"]), datetime.now(timezone.utc))
    return {f.id for f in result.findings}


@pytest.fixture()
def roles():
    """Uniquely named roles (roles are cluster-wide), dropped whatever happens."""
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"posture_{k}_{suffix}" for k in ("su", "cr", "md5", "plain", "nologin")}
    admin = pg_admin_connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{names["su"]}" LOGIN SUPERUSER')
            cur.execute(f'CREATE ROLE "{names["cr"]}" LOGIN CREATEROLE')
            # A pre-hashed md5 password is stored as is, whatever password_encryption says.
            cur.execute(f"CREATE ROLE \"{names['md5']}\" LOGIN PASSWORD 'md5{uuid.uuid4().hex}'")
            cur.execute(f'CREATE ROLE "{names["plain"]}" LOGIN PASSWORD \'plain-secret\'')
            cur.execute(f'CREATE ROLE "{names["nologin"]}" NOLOGIN SUPERUSER')
        yield names
    finally:
        with admin.cursor() as cur:
            for name in names.values():
                cur.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.close()


def test_privileged_and_md5_application_roles(pg_database, roles):
    found = {f for f in findings(pg_database[1]) if f.endswith(roles["su"][-8:])}
    assert found == {f"superuser_role:{roles['su']}", f"createrole_role:{roles['cr']}",
                     f"md5_role_password:{roles['md5']}"}


def test_create_on_public_for_public(pg_database):
    name, url = pg_database
    assert "public_schema_create" not in findings(url)  # PostgreSQL 15's default
    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE ROLE posture_owner_" + name[-10:] + " NOLOGIN")
            cur.execute("GRANT CREATE ON SCHEMA public TO posture_owner_" + name[-10:])
        assert "public_schema_create" not in findings(url)  # one role, not PUBLIC
        with admin.cursor() as cur:
            cur.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # the PostgreSQL <= 14 default
        assert "public_schema_create" in findings(url)
        with admin.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE")
        assert "public_schema_create" not in findings(url)
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP OWNED BY posture_owner_" + name[-10:])
            cur.execute("DROP ROLE IF EXISTS posture_owner_" + name[-10:])
        admin.close()
