"""The fast tier through what the shared server must not go through: a statistics reset, a
restart in the middle of a poll, a role without pg_monitor, and a streaming standby."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest
from sqlalchemy import func, select

from monitor_app.errors import DbmonError
from monitor_app.metrics.pg_fast import run_poll
from monitor_app.store.models import MetricSeries
from tests.metrics.pg_fast_helpers import all_latest, commits_and_rollbacks, health_events, latest, poll
from tests.posture.clusters import PG_BIN, PrivateCluster, _as_postgres
from tests.schema.conftest import add_asset, make_runtime
from tests.services import role_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    c = PrivateCluster()
    try:
        c.start(listen="", wal_level="replica", max_wal_senders="4")
        yield c
    finally:
        c.stop()


@pytest.fixture()
def target(sqlite_store, tmp_path, cluster):
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = add_asset(sqlite_store, name="cluster-db", engine="postgresql", connection=cluster.connection())
    yield rt, asset_id
    rt.pg_sessions.close()


def negative_rates(store, asset_id) -> dict:
    return {k: v for k, v in all_latest(store, asset_id).items() if ("per_second" in k or "ratio" in k) and v < 0}


def test_a_statistics_reset_drops_its_interval_and_never_yields_a_negative_rate(target, cluster):
    rt, asset_id = target
    url = cluster.dsn()
    poll(rt, asset_id)
    commits_and_rollbacks(url, commits=500, rollbacks=0)
    assert poll(rt, asset_id)["rates"] == "interval"
    tps_before = latest(rt.store, asset_id, "pg.transactions_per_second")
    assert tps_before > 0
    cluster.run("SELECT pg_stat_reset()")
    commits_and_rollbacks(url, commits=5, rollbacks=0)
    assert poll(rt, asset_id)["rates"] == "statistics reset"
    assert latest(rt.store, asset_id, "pg.transactions_per_second") == tps_before  # no rate written this time
    assert latest(rt.store, asset_id, "pg.xact_commit") < 500  # the raw counter as the server has it
    commits_and_rollbacks(url, commits=50, rollbacks=0)
    assert poll(rt, asset_id)["rates"] == "interval"
    assert 0 < latest(rt.store, asset_id, "pg.transactions_per_second") != tps_before
    assert negative_rates(rt.store, asset_id) == {}


def _metrics_backend(cluster) -> int:
    conn = cluster.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'dbmon-metrics'")
        [(pid,)] = cur.fetchall()
    conn.close()
    return pid


def test_a_restart_in_the_middle_of_a_poll_is_one_failure_then_a_dropped_interval(target, cluster):
    rt, asset_id = target
    poll(rt, asset_id)
    poll(rt, asset_id)
    backend = _metrics_backend(cluster)
    os.kill(backend, signal.SIGSTOP)  # the poll's next query hangs in that backend...
    outcome: dict = {}

    def polling():
        try:
            outcome["result"] = run_poll(rt, asset_id)
        except DbmonError as exc:
            outcome["error"] = exc.message

    thread = threading.Thread(target=polling)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()
    # ...while the server goes down under it (an immediate stop kills the stopped backend too).
    done = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop")
    assert done.returncode == 0, done.stderr
    thread.join(timeout=30)
    assert outcome.get("error", "").startswith("refused: "), outcome
    assert health_events(rt.store) == ["metrics.pg_fast.check_failed"]

    cluster.start(listen="", wal_level="replica", max_wal_senders="4")
    assert poll(rt, asset_id)["rates"] == "server restarted"
    assert health_events(rt.store) == ["metrics.pg_fast.check_failed", "metrics.pg_fast.check_recovered"]
    commits_and_rollbacks(cluster.dsn(), commits=20, rollbacks=0)
    assert poll(rt, asset_id)["rates"] == "interval"
    assert negative_rates(rt.store, asset_id) == {}


def test_a_role_without_pg_monitor_is_a_clear_status_while_the_rest_is_still_collected(sqlite_store, tmp_path,
                                                                                          cluster):
    role = role_name("plain")
    cluster.run(f'CREATE ROLE "{role}" LOGIN')
    other = cluster.connect()  # a superuser's session the plain role may not look into
    rt = make_runtime(sqlite_store, tmp_path)
    asset_id = add_asset(sqlite_store, name="plain-db", engine="postgresql", connection=cluster.connection(role))
    try:
        result = poll(rt, asset_id)
        assert any(p.startswith("missing privileges: ") for p in result["problems"]), result
        assert health_events(rt.store) == ["metrics.pg_fast.check_failed"]
        assert latest(rt.store, asset_id, "pg.max_connections") == 100
        cluster.run(f'GRANT pg_monitor TO "{role}"')
        assert poll(rt, asset_id)["problems"] == []
        assert health_events(rt.store) == ["metrics.pg_fast.check_failed", "metrics.pg_fast.check_recovered"]
        # A query the role may not run loses its own group only.
        cluster.run("REVOKE EXECUTE ON FUNCTION pg_current_wal_lsn() FROM PUBLIC")
        problems = poll(rt, asset_id)["problems"]
        assert problems and all("permission denied for function pg_current_wal_lsn" in p for p in problems)
        assert {p.split(":")[0] for p in problems} == {"wal", "pg_stat_replication", "pg_replication_slots"}
        with rt.store.session() as s:
            fresh = {x.name for x in s.scalars(select(MetricSeries).where(
                MetricSeries.asset_id == asset_id,
                MetricSeries.last_at == select(func.max(MetricSeries.last_at)).scalar_subquery()))}
        assert {"pg.sessions_by_state", "pg.locks", "pg.xact_commit", "pg.transactions_per_second"} <= fresh
        assert "pg.wal_position_bytes" not in fresh
    finally:
        cluster.run("GRANT EXECUTE ON FUNCTION pg_current_wal_lsn() TO PUBLIC")
        other.close()
        rt.pg_sessions.close()


def test_a_streaming_standby_has_its_lag_on_the_primary_and_zero_replay_lag_when_idle(sqlite_store, tmp_path,
                                                                                        cluster):
    standby = PrivateCluster()
    try:
        shutil.rmtree(standby.data)
        done = _as_postgres(str(PG_BIN / "pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream",
                            "-h", str(cluster.root), "-p", str(cluster.port), "-U", "postgres")
        assert done.returncode == 0, done.stderr
        with open(standby.data / "postgresql.auto.conf", "a") as conf:  # the last setting wins
            conf.write(f"primary_conninfo = 'host={cluster.root} port={cluster.port} user=postgres "
                       "application_name=replica1'\n")
        standby.start(listen="")
        rt = make_runtime(sqlite_store, tmp_path)
        primary_id = add_asset(sqlite_store, name="primary", engine="postgresql", connection=cluster.connection())
        standby_id = add_asset(sqlite_store, name="standby", engine="postgresql", connection=standby.connection())
        cluster.run("CREATE TABLE IF NOT EXISTS r (x int)", "INSERT INTO r SELECT generate_series(1, 1000)")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            poll(rt, primary_id)
            poll(rt, standby_id)
            if (latest(rt.store, primary_id, "pg.replication_lag_bytes", standby="replica1") == 0
                    and latest(rt.store, standby_id, "pg.replay_lag_bytes") == 0):
                break
            time.sleep(0.3)
        store = rt.store
        assert latest(store, primary_id, "pg.standbys") == 1
        assert latest(store, primary_id, "pg.standby_streaming", standby="replica1") == 1
        assert latest(store, primary_id, "pg.replication_lag_seconds", standby="replica1") == 0
        assert latest(store, standby_id, "pg.in_recovery") == 1
        # Nothing pending on an idle primary: 0, not the seconds since the last replayed commit.
        time.sleep(1.2)
        poll(rt, standby_id)
        assert latest(store, standby_id, "pg.replay_lag_seconds") == 0
        assert latest(store, standby_id, "pg.wal_position_bytes") > 0
        rt.pg_sessions.close()
    finally:
        standby.stop()
