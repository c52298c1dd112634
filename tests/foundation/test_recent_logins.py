"""One reachability login answers for the role's other databases on that server, for a while."""

from __future__ import annotations

import time

from monitor_app.assets.connection_budget import ConnectionBudget
from monitor_app.assets.reachability import probe_postgres
from monitor_app.assets.recent_logins import RecentLogins
from tests.schema.conftest import pg_connection
from tests.services import create_pg_database, drop_pg_database, pg_admin_connect


def connection(database: str) -> dict:
    from tests import services

    return {**pg_connection(services.PG_ADMIN_URL), "database": database}


def sessions(database: str) -> int:
    """Logins the server counted for `database` (flushed when each session ends)."""
    conn = pg_admin_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_a_login_answers_for_the_roles_other_databases_until_it_expires(store):
    (first, _), (second, _), (closed, _) = (create_pg_database("dbmon_logins") for _ in range(3))
    budget = ConnectionBudget(store)
    try:
        conn = pg_admin_connect()
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{closed}" ALLOW_CONNECTIONS false')
        conn.close()
        logins = RecentLogins(ttl=1.5)
        assert probe_postgres(connection(first), None, 5, budget, logins).up
        before = sessions(second)
        answered = probe_postgres(connection(second), None, 5, budget, logins)
        assert answered.up and answered.server_version and sessions(second) == before  # no login of its own

        # Not in the list: a real login, which this database refuses.
        refused = probe_postgres(connection(closed), None, 5, budget, logins)
        assert not refused.up and "not currently accepting connections" in refused.error
        # Another password is another key: it logs in itself.
        assert probe_postgres(connection(second), "other", 5, budget, logins).up
        assert sessions(second) == before + 1

        time.sleep(1.6)
        assert probe_postgres(connection(second), None, 5, budget, logins).up
        assert sessions(second) == before + 2  # expired: logged in again
    finally:
        budget.close()
        for name in (first, second, closed):
            drop_pg_database(name)


def test_a_failed_login_is_forgotten_and_the_remembered_logins_are_bounded(store):
    logins = RecentLogins(ttl=60, max_entries=2)
    budget = ConnectionBudget(store)
    try:
        up = connection("postgres")
        assert probe_postgres(up, None, 5, budget, logins).up and len(logins) == 1
        down = {**up, "database": "no_such_database_here"}
        assert not probe_postgres(down, None, 5, budget, logins).up
        assert len(logins) == 0  # the same key: the role's last login failed, so nothing answers for it
        for user in ("a", "b", "c"):
            logins.remember(logins.key({**up, "user": user}, None), ["postgres"], "15", 1.0)
        assert len(logins) == 2 and logins.lookup(logins.key({**up, "user": "a"}, None), "postgres") is None
    finally:
        budget.close()
