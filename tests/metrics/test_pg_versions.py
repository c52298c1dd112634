"""The PostgreSQL fast, medium and slow tiers on every supported major (13 to 17), each against a
private primary with a streaming standby made from a cold copy of it (these builds carry no
pg_basebackup). Each test makes something happen on the server and asserts the series that
should show it, including the ones a major lacks: 13 has no session counters and no
`pg_stat_statements_info`, 17 moved the checkpointer to `pg_stat_checkpointer` and dropped
`buffers_backend`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import select

from monitor_app.metrics.pg_fast import run_poll as fast_poll
from monitor_app.metrics.pg_medium import run_poll as medium_poll
from monitor_app.metrics.pg_slow import run_poll as slow_poll
from monitor_app.store.models import Event, MetricSeries
from tests.metrics.pg_fast_helpers import all_latest, commits_and_rollbacks, latest, real_deadlock, run_statements
from tests.postgres_versions import cluster, majors
from tests.posture.clusters import PrivateCluster, _as_postgres
from tests.schema.conftest import add_asset, make_runtime
from tests.services import free_port

pytestmark = pytest.mark.slow

WAL_SEGMENT = 16 * 1024 * 1024
# fsync off: throwaway clusters with no crash to survive, and writes the tests wait for are quicker.
PRIMARY_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "archive_mode": "on",
                    "archive_command": "true", "deadlock_timeout": "100ms", "fsync": "off"}
STANDBY_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "hot_standby": "on", "fsync": "off"}
COLD_ROWS = 30_000  # a table first read after the restart: its blocks come from outside shared_buffers


@dataclass
class Servers:
    major: int
    primary: PrivateCluster
    standby: PrivateCluster
    observers: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.primary.dsn()

    def scalar(self, sql: str, on: str = "primary"):
        """One value read through a connection kept for the test's own reads: a new connection
        each time would add its start-up's catalogue reads to the statistics being measured.
        Each read is a transaction of its own, so it sees the statistics anew."""
        conn = self.observers.get(on)
        if conn is None:
            conn = self.observers[on] = psycopg2.connect(getattr(self, on).dsn(), application_name="observer")
            conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]

    def database_stat(self, column: str) -> float:
        return float(self.scalar(f"SELECT {column} FROM pg_stat_database WHERE datname = 'postgres'"))

    def close_observers(self) -> None:
        for conn in self.observers.values():
            conn.close()


def stop_cleanly(c: PrivateCluster) -> None:
    done = _as_postgres(str(c.bin / "pg_ctl"), "-D", str(c.data), "-m", "fast", "-w", "-t", "60", "stop")
    assert done.returncode == 0, done.stderr
    c.pid = None


def cold_copy(primary: PrivateCluster) -> PrivateCluster:
    """A cluster whose data directory is a copy of the cleanly stopped `primary`'s, set to stream
    from it (standby.signal and primary_conninfo, as pg_basebackup -R writes them). Made without
    PrivateCluster's initdb, whose result the copy would replace."""
    copy = object.__new__(PrivateCluster)
    copy.bin, copy.password, copy.pid, copy.port = primary.bin, None, None, free_port()
    copy.root = Path(tempfile.mkdtemp(prefix="dbmon-standby-"))
    copy.data = copy.root / "data"
    try:
        shutil.chown(copy.root, "postgres", "postgres")
        subprocess.run(["cp", "-a", str(primary.data), str(copy.data)], check=True, timeout=120)
        (copy.data / "standby.signal").touch()
        shutil.chown(copy.data / "standby.signal", "postgres", "postgres")
        with open(copy.data / "postgresql.auto.conf", "a") as conf:
            conf.write(f"primary_conninfo = 'host={primary.root} port={primary.port} user=postgres "
                       "application_name=replica1'\n")
    except BaseException:
        shutil.rmtree(copy.root, ignore_errors=True)
        raise
    return copy


@pytest.fixture(scope="module", params=majors(), ids=lambda m: f"pg{m}")
def servers(request):
    primary = cluster(request.param)
    standby = None
    try:
        primary.start(listen="", **PRIMARY_SETTINGS)
        primary.run("CREATE EXTENSION pg_stat_statements",
                    "CREATE TABLE cold WITH (autovacuum_enabled = off) AS "
                    f"SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, {COLD_ROWS}) g")
        stop_cleanly(primary)
        standby = cold_copy(primary)
        primary.start(listen="", **PRIMARY_SETTINGS)
        standby.start(listen="", **STANDBY_SETTINGS)
        assert primary.server_version_num() // 10000 == request.param
        servers = Servers(request.param, primary, standby)
        try:
            yield servers
        finally:
            servers.close_observers()
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()


@dataclass
class Target:
    rt: object
    primary: int
    standby: int

    @property
    def store(self):
        return self.rt.store


@pytest.fixture()
def target(sqlite_store, tmp_path, servers):
    rt = make_runtime(sqlite_store, tmp_path, {"metrics": {"statements_top": 10, "relations_top": 20}})
    primary = add_asset(sqlite_store, name="primary", engine="postgresql", connection=servers.primary.connection())
    standby = add_asset(sqlite_store, name="standby", engine="postgresql", connection=servers.standby.connection())
    yield Target(rt, primary, standby)
    rt.pg_sessions.close()


def wait_until(check, what: str, timeout: float = 20.0):
    """Statistics reach the views a moment after the session that made them (13 and 14 through
    the statistics collector, 15+ when a backend flushes): wait for them before polling."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def poll_until(poll, check, what: str, timeout: float = 20.0):
    """Poll until `check()` holds after a poll; the last poll's result."""
    deadline = time.monotonic() + timeout
    while True:
        result = poll()
        if check():
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def negative(store, asset_id: int) -> dict:
    return {k: v for k, v in all_latest(store, asset_id).items()
            if v < 0 and ("per_second" in k or "ratio" in k or "in_interval" in k or "_avg" in k)}


# -- fast tier --------------------------------------------------------------------------------

def test_commits_and_rollbacks_become_transactions_per_second_and_a_rollback_ratio(target, servers):
    before = servers.database_stat("xact_rollback")
    fast_poll(target.rt, target.primary)
    commits_and_rollbacks(servers.url, commits=40, rollbacks=10)
    wait_until(lambda: servers.database_stat("xact_rollback") >= before + 10, "the rollbacks")
    assert fast_poll(target.rt, target.primary)["rates"] == "interval"
    assert latest(target.store, target.primary, "pg.xact_rollback") == before + 10
    assert latest(target.store, target.primary, "pg.rollbacks_per_second") > 0
    assert latest(target.store, target.primary, "pg.transactions_per_second") > latest(
        target.store, target.primary, "pg.rollbacks_per_second")
    # 10 rollbacks against 40 commits and the few of dbmon and of the wait above.
    assert 0.1 < latest(target.store, target.primary, "pg.rollback_ratio") <= 0.2


def quiet(target) -> None:
    """Poll until the database is quiet: blocks other sessions touched a moment ago (autovacuum
    looking at it after the start, a closed session's last statistics) reach the views late,
    the statistics collector of 13 and 14 sending them at most every 500 ms."""
    fast_poll(target.rt, target.primary)
    hits = latest(target.store, target.primary, "pg.blks_hit")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.6)
        fast_poll(target.rt, target.primary)
        hits, earlier = latest(target.store, target.primary, "pg.blks_hit"), hits
        if hits - earlier < 50:
            return
    raise AssertionError("the database did not fall quiet")


def test_the_cache_hit_ratio_is_the_intervals_not_since_start(target, servers):
    store, asset = target.store, target.primary
    pages = servers.scalar("SELECT pg_relation_size('cold') / 8192")
    quiet(target)
    counts = [(latest(store, asset, "pg.blks_hit"), latest(store, asset, "pg.blks_read"))]
    read_before = servers.database_stat("blks_read")
    # Through the kept connection: a new one would add its start-up's catalogue hits to the interval.
    servers.scalar("SELECT count(*) FROM cold")  # its first read since the server started
    wait_until(lambda: servers.database_stat("blks_read") >= read_before + pages, "the blocks read")
    fast_poll(target.rt, asset)
    counts.append((latest(store, asset, "pg.blks_hit"), latest(store, asset, "pg.blks_read")))
    cold_ratio = latest(store, asset, "pg.cache_hit_ratio")
    hit_before = servers.database_stat("blks_hit")
    for _ in range(5):
        servers.scalar("SELECT count(*) FROM cold")  # now in shared_buffers
    wait_until(lambda: servers.database_stat("blks_hit") >= hit_before + 5 * pages, "the blocks hit")
    fast_poll(target.rt, asset)
    counts.append((latest(store, asset, "pg.blks_hit"), latest(store, asset, "pg.blks_read")))
    warm_ratio = latest(store, asset, "pg.cache_hit_ratio")
    assert cold_ratio < 0.5 < 0.9 < warm_ratio
    (h0, r0), (h1, r1), (h2, r2) = counts
    assert cold_ratio == pytest.approx((h1 - h0) / ((h1 - h0) + (r1 - r0)))
    assert warm_ratio == pytest.approx((h2 - h1) / ((h2 - h1) + (r2 - r1)))


def test_an_idle_transaction_holding_a_row_lock_and_the_session_it_blocks(target, servers):
    run_statements(servers.url, "CREATE TABLE IF NOT EXISTS locked (id int PRIMARY KEY, v int)",
                   "INSERT INTO locked VALUES (1, 0) ON CONFLICT DO NOTHING")
    holder = psycopg2.connect(servers.url, application_name="holder")
    waiter = psycopg2.connect(servers.url, application_name="waiter")
    blocked = threading.Thread(target=lambda: waiter.cursor().execute("UPDATE locked SET v = v + 1 WHERE id = 1"))
    try:
        with holder.cursor() as cur:
            cur.execute("UPDATE locked SET v = v + 1 WHERE id = 1")  # and stays idle in its transaction
        held_at = time.monotonic()
        blocked.start()
        wait_until(lambda: servers.scalar("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE application_name = 'waiter' AND wait_event_type = 'Lock'"), "the lock wait")
        time.sleep(max(0.0, 1.2 - (time.monotonic() - held_at)))
        fast_poll(target.rt, target.primary)
        store, asset = target.store, target.primary
        assert latest(store, asset, "pg.sessions_by_state", state="idle in transaction") == 1
        assert latest(store, asset, "pg.sessions_by_state", state="active") == 1
        assert latest(store, asset, "pg.idle_in_transaction") == 1
        assert 1.0 <= latest(store, asset, "pg.idle_in_transaction_oldest_seconds") < 30
        assert latest(store, asset, "pg.longest_transaction_seconds") >= 1.0
        assert latest(store, asset, "pg.blocked_sessions") == 1
        assert latest(store, asset, "pg.sessions_waiting", wait_event_type="Lock") == 1
        assert latest(store, asset, "pg.locks_waiting") >= 1
        assert latest(store, asset, "pg.longest_query_seconds") >= 0.5  # the blocked UPDATE
    finally:
        holder.rollback()
        if blocked.is_alive():
            blocked.join(timeout=10)
        waiter.rollback()
        holder.close()
        waiter.close()
    fast_poll(target.rt, target.primary)
    assert latest(target.store, target.primary, "pg.blocked_sessions") == 0
    assert latest(target.store, target.primary, "pg.idle_in_transaction") == 0


def test_a_deadlock_is_counted_in_its_interval(target, servers):
    before = servers.database_stat("deadlocks")
    fast_poll(target.rt, target.primary)
    assert real_deadlock(servers.url) == 1
    wait_until(lambda: servers.database_stat("deadlocks") >= before + 1, "the deadlock")
    fast_poll(target.rt, target.primary)
    assert latest(target.store, target.primary, "pg.deadlocks_in_interval") == 1
    assert latest(target.store, target.primary, "pg.deadlocks") == before + 1


def test_writes_show_as_wal_bytes_per_second(target, servers):
    fast_poll(target.rt, target.primary)
    start = latest(target.store, target.primary, "pg.wal_position_bytes")
    run_statements(servers.url, "CREATE TABLE IF NOT EXISTS wal_churn (v text)",
                   "INSERT INTO wal_churn SELECT repeat('w', 100) FROM generate_series(1, 2000)")
    fast_poll(target.rt, target.primary)
    assert latest(target.store, target.primary, "pg.wal_position_bytes") - start > 200_000
    assert latest(target.store, target.primary, "pg.wal_bytes_per_second") > 0


SESSION_SERIES = ("pg.sessions", "pg.session_time", "pg.active_time", "pg.idle_in_transaction_time",
                  "pg.sessions_per_second", "pg.open_sessions_avg", "pg.active_sessions_avg",
                  "pg.idle_in_transaction_sessions_avg", "pg.sessions_abandoned_in_interval")


def test_session_counters_are_read_from_14_on_and_absent_on_13(target, servers):
    store, asset = target.store, target.primary
    fast_poll(target.rt, asset)
    if servers.major == 13:
        run_statements(servers.url, "SELECT pg_sleep(0.1)")
        fast_poll(target.rt, asset)
        assert {name: latest(store, asset, name) for name in SESSION_SERIES} == dict.fromkeys(SESSION_SERIES)
        return
    before = {name: latest(store, asset, name) for name in
              ("pg.sessions", "pg.session_time", "pg.active_time", "pg.idle_in_transaction_time")}
    conn = psycopg2.connect(servers.url, application_name="load")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_sleep(0.3)")  # 300 ms active...
        time.sleep(0.3)                        # ...then 300 ms idle in its transaction
    conn.commit()
    conn.close()
    wait_until(lambda: servers.database_stat("idle_in_transaction_time")
               >= before["pg.idle_in_transaction_time"] + 250, "the session's times")
    assert fast_poll(target.rt, asset)["rates"] == "interval"
    grown = {name: latest(store, asset, name) - value for name, value in before.items()}
    assert grown["pg.sessions"] >= 1
    assert grown["pg.active_time"] >= 250 and grown["pg.idle_in_transaction_time"] >= 250
    assert grown["pg.session_time"] >= 550
    for name in ("pg.sessions_per_second", "pg.open_sessions_avg", "pg.active_sessions_avg",
                 "pg.idle_in_transaction_sessions_avg"):
        assert latest(store, asset, name) > 0, name
    assert latest(store, asset, "pg.sessions_abandoned_in_interval") == 0


def test_statistics_resets_drop_their_interval_and_no_rate_goes_negative(target, servers):
    rt, asset, primary = target.rt, target.primary, servers.primary
    fast_poll(rt, asset)
    medium_poll(rt, asset)
    before = servers.database_stat("xact_commit")
    commits_and_rollbacks(servers.url, commits=200, rollbacks=20)
    wait_until(lambda: servers.database_stat("xact_commit") >= before + 200, "the commits")
    assert fast_poll(rt, asset)["rates"] == "interval"
    assert medium_poll(rt, asset)["dropped"] == {}

    reset_at = servers.scalar("SELECT stats_reset FROM pg_stat_database WHERE datname = 'postgres'")
    primary.run("SELECT pg_stat_reset()")
    wait_until(lambda: servers.scalar("SELECT stats_reset FROM pg_stat_database WHERE datname = 'postgres'")
               != reset_at, "the database reset")
    commits_and_rollbacks(servers.url, commits=5, rollbacks=1)
    assert fast_poll(rt, asset)["rates"] == "statistics reset"
    assert latest(target.store, asset, "pg.xact_commit") < 200

    # 17 keeps the checkpointer's counters apart from the background writer's, each reset alone.
    shared = ("checkpointer", "pg_stat_checkpointer") if servers.major >= 17 else ("bgwriter", "pg_stat_bgwriter")
    reset_at = servers.scalar(f"SELECT stats_reset FROM {shared[1]}")
    primary.run(f"SELECT pg_stat_reset_shared('{shared[0]}')")
    wait_until(lambda: servers.scalar(f"SELECT stats_reset FROM {shared[1]}") != reset_at, "the shared reset")
    assert medium_poll(rt, asset)["dropped"] == {"bgwriter": "statistics reset"}

    commits_and_rollbacks(servers.url, commits=20, rollbacks=0)
    primary.run("CHECKPOINT")
    time.sleep(0.3)
    assert fast_poll(rt, asset)["rates"] == "interval"
    assert medium_poll(rt, asset)["dropped"] == {}
    assert negative(target.store, asset) == {}


def test_a_standby_shows_on_the_primary_with_its_lag_and_has_no_replay_lag_when_idle(target, servers):
    rt, store = target.rt, target.store
    run_statements(servers.url, "CREATE TABLE IF NOT EXISTS replicated (x int)",
                   "INSERT INTO replicated SELECT generate_series(1, 1000)")

    def both():
        fast_poll(rt, target.primary)
        return fast_poll(rt, target.standby)

    poll_until(both, lambda: latest(store, target.primary, "pg.replication_lag_bytes", standby="replica1") == 0
               and latest(store, target.standby, "pg.replay_lag_bytes") == 0, "the standby to catch up")
    assert latest(store, target.primary, "pg.standbys") == 1
    assert latest(store, target.primary, "pg.standby_streaming", standby="replica1") == 1
    assert latest(store, target.primary, "pg.replication_lag_seconds", standby="replica1") == 0
    assert latest(store, target.primary, "pg.in_recovery") == 0
    assert latest(store, target.primary, "pg.replay_lag_seconds") is None  # a primary replays nothing
    assert latest(store, target.standby, "pg.in_recovery") == 1
    assert latest(store, target.standby, "pg.standbys") == 0
    # Nothing pending on an idle primary: 0, not the seconds since the last replayed commit.
    time.sleep(1.2)
    fast_poll(rt, target.standby)
    assert latest(store, target.standby, "pg.replay_lag_seconds") == 0
    assert 0 < latest(store, target.standby, "pg.wal_position_bytes") <= latest(
        store, target.primary, "pg.wal_position_bytes") + WAL_SEGMENT
    assert servers.scalar("SELECT count(*) FROM replicated", on="standby") >= 1000


# -- medium tier ------------------------------------------------------------------------------

def ranked_series(store, asset_id: int, name: str) -> dict[str, float]:
    with store.session() as s:
        return {series.labels["query"]: series.last_value for series in s.scalars(
            select(MetricSeries).where(MetricSeries.asset_id == asset_id, MetricSeries.name == name))}


def test_statements_are_ranked_by_their_time_in_the_interval_without_dbmons_own(target, servers):
    rt, store, asset = target.rt, target.store, target.primary
    run_statements(servers.url, "CREATE TABLE IF NOT EXISTS warm AS SELECT generate_series(1, 5000) AS id")
    servers.primary.run("SELECT pg_stat_statements_reset()")
    fast_poll(rt, asset)
    medium_poll(rt, asset)
    fast_poll(rt, asset)
    run_statements(servers.url, *["SELECT pg_sleep(0.2)"] * 3, *[f"SELECT {i} + 1" for i in range(50)],
                   "SELECT count(*) FROM warm")
    result = medium_poll(rt, asset)
    assert result["problems"] == [] and result["statements_ranked"]
    exec_time = ranked_series(store, asset, "pg.statement_exec_seconds_per_second")
    leader = max(exec_time.items(), key=lambda kv: kv[1])[0]
    assert leader.startswith("SELECT pg_sleep")
    assert 195 <= ranked_series(store, asset, "pg.statement_mean_ms")[leader] < 600
    calls = ranked_series(store, asset, "pg.statement_calls_per_second")
    assert [q for q in calls if q.startswith("SELECT _1 _ _2")], calls  # the 50 sums are one statement
    hits = ranked_series(store, asset, "pg.statement_blocks_hit_per_second")
    assert [v for q, v in hits.items() if "FROM warm" in q and v > 0], hits
    # dbmon's own statements, its transaction control included, are never ranked.
    own = [q for q in calls if "dbmon" in q or "pg_stat_statements" in q or "BEGIN READ ONLY" in q
           or "SAVEPOINT" in q or q == "COMMIT"]
    assert own == []
    assert latest(store, asset, "pg.statements_available") == 1
    evicted = latest(store, asset, "pg.statements_evicted_in_interval")
    assert evicted is None if servers.major == 13 else evicted == 0  # pg_stat_statements_info is 14+


def test_a_statements_reset_never_ranks_numbers_from_before_it(target, servers):
    rt, store, asset = target.rt, target.store, target.primary
    run_statements(servers.url, *["SELECT pg_sleep(0.01)"] * 5)
    medium_poll(rt, asset)
    servers.primary.run("SELECT pg_stat_statements_reset()")
    run_statements(servers.url, "SELECT pg_sleep(0.01)")
    result = medium_poll(rt, asset)
    if servers.major >= 14:  # the reset's time is in pg_stat_statements_info: the interval is dropped
        assert result["dropped"] == {"statements_info": "statistics reset"} and result["statements_ranked"] == []
    # On 13 nothing tells of the reset, but numbers that went back (5 calls, now 1) are not an interval.
    assert not [q for q in ranked_series(store, asset, "pg.statement_calls_per_second") if "pg_sleep" in q]
    assert negative(store, asset) == {}


def test_a_checkpoint_counts_as_requested_and_writes_buffers_on_every_major(target, servers):
    rt, store, asset = target.rt, target.store, target.primary
    medium_poll(rt, asset)
    before = latest(store, asset, "pg.bgwriter.checkpoints_requested")
    run_statements(servers.url, "CREATE TABLE IF NOT EXISTS dirty (v int)",
                   "INSERT INTO dirty SELECT generate_series(1, 10000)", "CHECKPOINT")
    poll_until(lambda: medium_poll(rt, asset),
               lambda: latest(store, asset, "pg.bgwriter.checkpoints_requested") > before, "the checkpoint")
    assert latest(store, asset, "pg.checkpoints_requested_in_interval") >= 1
    assert latest(store, asset, "pg.buffers_checkpoint_per_second") > 0
    assert 0 < latest(store, asset, "pg.checkpoints_requested_ratio") <= 1
    backend_writes = latest(store, asset, "pg.bgwriter.buffers_backend")
    assert backend_writes is None if servers.major >= 17 else backend_writes >= 0  # in pg_stat_io on 17

    # A standby's checkpoints are restartpoints, which 17 counts apart from checkpoints.
    medium_poll(rt, target.standby)
    before = latest(store, target.standby, "pg.bgwriter.checkpoints_requested")
    run_statements(servers.standby.dsn(), "CHECKPOINT")
    poll_until(lambda: medium_poll(rt, target.standby),
               lambda: latest(store, target.standby, "pg.bgwriter.checkpoints_requested") > before,
               "the standby's restartpoint")
    assert latest(store, target.standby, "pg.checkpoints_requested_in_interval") >= 1


def test_the_archiver_and_the_wal_directory(target, servers):
    rt, store, asset = target.rt, target.store, target.primary
    medium_poll(rt, asset)
    before = latest(store, asset, "pg.archiver.archived")
    run_statements(servers.url, "CREATE TABLE IF NOT EXISTS archived (v int)", "INSERT INTO archived VALUES (1)",
                   "SELECT pg_switch_wal()")
    poll_until(lambda: medium_poll(rt, asset),
               lambda: latest(store, asset, "pg.archiver.archived") > before, "the archiver")
    assert latest(store, asset, "pg.archive_mode") == 1
    assert latest(store, asset, "pg.archived_in_interval") >= 1
    assert latest(store, asset, "pg.archive_failing") == 0
    assert 0 <= latest(store, asset, "pg.archive_last_success_age_seconds") < 60
    assert latest(store, asset, "pg.wal_directory_files") >= 1
    assert latest(store, asset, "pg.wal_directory_bytes") >= WAL_SEGMENT
    medium_poll(rt, target.standby)
    assert latest(store, target.standby, "pg.archive_mode") == 0


# -- slow tier --------------------------------------------------------------------------------

def test_sizes_dead_tuples_and_transaction_id_age(target, servers):
    rt, store, asset = target.rt, target.store, target.primary
    run_statements(servers.url, "CREATE TABLE sized WITH (autovacuum_enabled = off) AS "
                   "SELECT g AS id, repeat('s', 100) AS pad FROM generate_series(1, 20000) g",
                   "DELETE FROM sized WHERE id <= 5000")
    wait_until(lambda: servers.scalar("SELECT n_dead_tup FROM pg_stat_user_tables "
                              "WHERE relname = 'sized'") == 5000, "the dead tuples")
    assert slow_poll(rt, asset)["problems"] == []
    sized = {"relation": "public.sized"}
    size = latest(store, asset, "pg.relation_size_bytes", **sized)
    assert size == servers.scalar("SELECT pg_total_relation_size('sized')") and size > 2_000_000
    assert latest(store, asset, "pg.database_size_bytes") > size
    assert latest(store, asset, "pg.relation_dead_tuples", **sized) == 5000
    assert latest(store, asset, "pg.relation_dead_tuple_ratio", **sized) == pytest.approx(0.25)
    age = latest(store, asset, "pg.datfrozenxid_age")
    assert 0 < latest(store, asset, "pg.wraparound_ratio") < 1
    run_statements(servers.url, *["SELECT txid_current()"] * 50)  # 50 transaction ids used
    slow_poll(rt, asset)
    assert latest(store, asset, "pg.datfrozenxid_age") >= age + 50
    assert latest(store, asset, "pg.relation_xid_age", **sized) >= 50


def setting_events(store) -> list[dict]:
    with store.session() as s:
        return [e.payload for e in s.scalars(select(Event).where(Event.type == "pg.setting_changed").order_by(Event.id))]


def test_a_changed_setting_is_an_event_with_its_old_and_new_value(target, servers):
    rt, store, asset, primary = target.rt, target.store, target.primary, servers.primary
    assert slow_poll(rt, asset)["settings_changed"] == []  # the baseline
    try:
        primary.run("ALTER SYSTEM SET work_mem = '7MB'", "ALTER SYSTEM SET shared_buffers = '64MB'",
                    "SELECT pg_reload_conf()")
        changed = poll_until(lambda: slow_poll(rt, asset), lambda: setting_events(store), "the changed settings")
        assert set(changed["settings_changed"]) == {"work_mem", "shared_buffers"}
        events = {e["setting"]: e for e in setting_events(store)}
        assert events["work_mem"] == {"setting": "work_mem", "old": None, "new": "7168", "pending_restart": False}
        assert events["shared_buffers"]["pending_restart"] is True
        assert latest(store, asset, "pg.settings_pending_restart") == 1
        assert slow_poll(rt, asset)["settings_changed"] == []  # reported once
    finally:
        primary.run("ALTER SYSTEM RESET work_mem", "ALTER SYSTEM RESET shared_buffers", "SELECT pg_reload_conf()")
    poll_until(lambda: slow_poll(rt, asset), lambda: len(setting_events(store)) > 2, "the reset setting")
    assert setting_events(store)[-1] == {"setting": "work_mem", "old": "7168", "new": None, "pending_restart": False}
