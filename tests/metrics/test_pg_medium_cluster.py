"""The medium tier on a private cluster: `pg_stat_statements` preloaded (a restart the shared
server must not go through), WAL archiving that fails, a vacuum caught running, a statements
reset, and a database owner who shadows what the tier reads."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest
from sqlalchemy import select

from monitor_app.metrics.pg_medium import run_poll
from monitor_app.store.models import MetricSeries
from tests.metrics.pg_fast_helpers import latest, run_statements
from tests.posture.clusters import PrivateCluster
from tests.schema.conftest import add_asset, make_runtime
from tests.services import role_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    c = PrivateCluster()
    try:
        c.start(listen="", shared_preload_libraries="pg_stat_statements", archive_mode="on",
                archive_command="false", archive_timeout="0")
        c.run("CREATE EXTENSION pg_stat_statements")
        yield c
    finally:
        c.stop()


@pytest.fixture()
def target(sqlite_store, tmp_path, cluster):
    rt = make_runtime(sqlite_store, tmp_path, {"metrics": {"statements_top": 3, "statements_tracked": 10}})
    asset_id = add_asset(sqlite_store, name="cluster-db", engine="postgresql", connection=cluster.connection())
    yield rt, asset_id
    rt.pg_sessions.close()


def statement_series(store, asset_id: int, name: str) -> dict[str, float]:
    with store.session() as s:
        return {series.labels["query"]: series.last_value for series in s.scalars(
            select(MetricSeries).where(MetricSeries.asset_id == asset_id, MetricSeries.name == name))}


def test_the_statement_that_took_the_most_time_in_the_interval_leads_and_dbmons_own_are_left_out(target, cluster):
    rt, asset_id = target
    cluster.run("SELECT pg_stat_statements_reset()")
    run_poll(rt, asset_id)
    run_statements(cluster.dsn(), *["SELECT pg_sleep(0.2)"] * 3, *[f"SELECT {i} + 1" for i in range(200)])
    second = run_poll(rt, asset_id)
    assert second["problems"] == [] and len(second["statements_ranked"]) == 2  # the two the load ran, none of dbmon's
    means = statement_series(rt.store, asset_id, "pg.statement_mean_ms")
    leader = max(statement_series(rt.store, asset_id, "pg.statement_exec_seconds_per_second").items(),
                 key=lambda kv: kv[1])[0]
    assert leader.startswith("SELECT pg_sleep") and 195 <= means[leader] < 600
    calls = statement_series(rt.store, asset_id, "pg.statement_calls_per_second")
    assert any(q.startswith("SELECT _1 _ _2") for q in calls), calls  # the 200 sums are one normalised statement
    assert not [q for q in calls if "dbmon" in q or "pg_stat_statements" in q]
    assert latest(rt.store, asset_id, "pg.statements_available") == 1


def test_a_statements_reset_drops_that_interval_only(target, cluster):
    rt, asset_id = target
    run_poll(rt, asset_id)
    run_statements(cluster.dsn(), "SELECT pg_sleep(0.05)")
    run_poll(rt, asset_id)
    cluster.run("SELECT pg_stat_statements_reset()")
    run_statements(cluster.dsn(), "SELECT pg_sleep(0.05)", "CHECKPOINT")
    after_reset = run_poll(rt, asset_id)
    assert after_reset["statements_ranked"] == []
    assert after_reset["dropped"] == {"statements_info": "statistics reset"}  # the checkpointer still counts
    assert latest(rt.store, asset_id, "pg.checkpoints_requested_in_interval") >= 1
    run_statements(cluster.dsn(), "SELECT pg_sleep(0.05)")
    assert run_poll(rt, asset_id)["statements_ranked"]
    assert latest(rt.store, asset_id, "pg.statements_evicted_in_interval") == 0


def test_failing_wal_archiving_shows_as_failing_with_failures_in_the_interval(target, cluster):
    rt, asset_id = target
    run_poll(rt, asset_id)
    run_statements(cluster.dsn(), "CREATE TABLE IF NOT EXISTS churn (v int)", "INSERT INTO churn SELECT 1",
                   "SELECT pg_switch_wal()")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the archiver retries a failed segment every few seconds
        run_poll(rt, asset_id)
        if latest(rt.store, asset_id, "pg.archive_failing") == 1:
            break
        time.sleep(1)
    assert latest(rt.store, asset_id, "pg.archive_mode") == 1
    assert latest(rt.store, asset_id, "pg.archive_failing") == 1
    assert latest(rt.store, asset_id, "pg.archiver.archive_failed") >= 1
    assert latest(rt.store, asset_id, "pg.archive_last_success_age_seconds") is None  # never archived


def test_a_running_vacuum_is_seen_with_its_progress(target, cluster):
    rt, asset_id = target
    run_statements(cluster.dsn(), "DROP TABLE IF EXISTS wide",
                   "CREATE TABLE wide WITH (autovacuum_enabled = off) AS SELECT g AS id, repeat('x', 200) AS pad "
                   "FROM generate_series(1, 100000) g", "DELETE FROM wide WHERE id % 2 = 0")
    # Throttled hard, so it is still running when the poll looks.
    def throttled_vacuum():
        try:
            run_statements(cluster.dsn(), "SET vacuum_cost_delay = 100", "SET vacuum_cost_limit = 1", "VACUUM wide")
        except psycopg2.errors.QueryCanceled:
            pass  # cancelled by the test once seen

    vacuum = threading.Thread(target=throttled_vacuum)
    vacuum.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            run_poll(rt, asset_id)
            if latest(rt.store, asset_id, "pg.vacuums_running"):
                break
            time.sleep(0.2)
        assert latest(rt.store, asset_id, "pg.vacuums_running") == 1
        labels = {"relation": "public.wide", "kind": "manual"}
        assert 0 <= latest(rt.store, asset_id, "pg.vacuum_scanned_ratio", **labels) < 1
        assert latest(rt.store, asset_id, "pg.vacuum_running_seconds", **labels) >= 0
    finally:
        cluster.run("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'VACUUM wide'")
        vacuum.join(timeout=30)


def test_a_database_owner_cannot_run_code_as_the_monitoring_role_through_the_search_path(sqlite_store, tmp_path,
                                                                                        cluster):
    """The owner sets the database's search_path ahead of pg_catalog and puts look-alikes of what
    the tiers read there; a superuser's poll must not run them."""
    from monitor_app.metrics.pg_fast import run_poll as fast_poll

    owner, database = role_name("dbmon_owner"), role_name("dbmon_owned")
    cluster.run(f"CREATE ROLE {owner} LOGIN", f"CREATE DATABASE {database} OWNER {owner}")
    conn = cluster.connect(user=owner, database=database)
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA trap; ALTER DATABASE {database} SET search_path = trap, pg_catalog, public")
        cur.execute(f"""CREATE FUNCTION trap.escalate() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN
            IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
              EXECUTE 'ALTER ROLE {owner} SUPERUSER'; END IF; RETURN 1; END $$""")
        for view in ("pg_stat_activity", "pg_stat_database", "pg_stat_bgwriter", "pg_stat_archiver",
                     "pg_stat_progress_vacuum", "pg_stat_statements", "pg_extension"):
            cur.execute(f"CREATE VIEW trap.{view} AS SELECT trap.escalate() AS x")
    conn.close()
    rt = make_runtime(sqlite_store, tmp_path)
    connection = dict(cluster.connection(), database=database)
    asset_id = add_asset(sqlite_store, name="owned-db", engine="postgresql", connection=connection)
    try:
        fast_poll(rt, asset_id)
        run_poll(rt, asset_id)
    finally:
        rt.pg_sessions.close()
    check = cluster.connect()
    with check.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (owner,))
        assert cur.fetchone() == (False,)
    check.close()


def test_without_pg_monitor_only_the_wal_directory_is_missing(sqlite_store, tmp_path, cluster):
    role = role_name("plain")
    cluster.run(f'CREATE ROLE "{role}" LOGIN')
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = add_asset(sqlite_store, name="plain-db", engine="postgresql", connection=cluster.connection(role))
    try:
        problems = run_poll(rt, asset_id)["problems"]
        assert [p.split(":")[0] for p in problems] == ["pg_ls_waldir"] and "permission denied" in problems[0]
        assert latest(rt.store, asset_id, "pg.wal_directory_bytes") is None
        assert latest(rt.store, asset_id, "pg.vacuums_running") == 0
        cluster.run(f'GRANT pg_monitor TO "{role}"')
        assert run_poll(rt, asset_id)["problems"] == []
        assert latest(rt.store, asset_id, "pg.wal_directory_bytes") > 0
    finally:
        cluster.run(f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')
