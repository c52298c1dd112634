"""The PostgreSQL medium tier: what it computes from two polls, and what it reads from a real
server without `pg_stat_statements` (the shared one). The extension, the archiver and vacuums in
progress are in test_pg_medium_cluster.py, on a private cluster."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.metrics.counter_rates import Interval
from monitor_app.metrics.pg_medium import dispatch_due, due_assets, run_poll
from monitor_app.metrics.pg_medium_queries import bgwriter_sql, statements_sql
from monitor_app.metrics.pg_medium_rates import source_rates, top_statements
from monitor_app.store.models import Event, MetricPollState
from tests.metrics.pg_fast_helpers import latest, polled_database, run_statements
from tests.schema.conftest import add_asset, make_runtime


def numbers(calls, exec_ms, rows=0, hit=0, read=0, temp=0):
    return (float(calls), float(exec_ms), float(rows), float(hit), float(read), float(temp))


def test_statements_are_ranked_by_time_spent_in_the_interval_not_since_reset():
    previous = {"old-heavy": list(numbers(1000, 900_000)), "new-hot": list(numbers(10, 100)),
                "idle": list(numbers(5, 50))}
    current = {"old-heavy": ("SELECT heavy", numbers(1001, 900_010)),   # 10 ms in the interval
               "new-hot": ("SELECT hot", numbers(110, 6100, rows=100)),  # 6 s in the interval
               "idle": ("SELECT idle", numbers(5, 50)),                  # not called: not ranked
               "unseen": ("SELECT unseen", numbers(50, 99_999))}         # no earlier numbers: not ranked
    ranked = top_statements(previous, current, 60.0, top=5)
    assert [s.queryid for s in ranked] == ["new-hot", "old-heavy"]
    hot = dict(ranked[0].series())
    assert hot["pg.statement_calls_per_second"] == pytest.approx(100 / 60)
    assert hot["pg.statement_exec_seconds_per_second"] == pytest.approx(6.0 / 60)
    assert hot["pg.statement_mean_ms"] == pytest.approx(60.0)
    assert hot["pg.statement_rows_per_second"] == pytest.approx(100 / 60)
    assert ranked[0].labels == {"queryid": "new-hot", "query": "SELECT hot"}
    assert [s.queryid for s in top_statements(previous, current, 60.0, top=1)] == ["new-hot"]
    # When the last poll saw every statement, one it did not see is new: all of it is the interval's.
    complete = top_statements(previous, current, 60.0, top=5, previous_complete=True)
    assert [s.queryid for s in complete] == ["unseen", "new-hot", "old-heavy"]


def test_a_statement_whose_numbers_went_back_was_evicted_and_made_again_so_it_is_not_ranked():
    previous = {"q": list(numbers(500, 5000)), "r": list(numbers(10, 10))}
    current = {"q": ("SELECT q", numbers(3, 40)), "r": ("SELECT r", numbers(12, 30))}
    assert [s.queryid for s in top_statements(previous, current, 10.0, top=10)] == ["r"]


def test_checkpointer_rates_and_the_share_of_requested_checkpoints():
    span = Interval(60.0, {"checkpoints_timed": 1, "checkpoints_requested": 3, "checkpoint_write_ms": 30_000,
                           "checkpoint_sync_ms": 600, "buffers_checkpoint": 6000, "buffers_clean": 0,
                           "maxwritten_clean": 2, "buffers_backend": 120, "buffers_alloc": 600})
    rates = dict(source_rates("bgwriter", span))
    assert rates["pg.checkpoints_requested_in_interval"] == 3 and rates["pg.checkpoints_timed_in_interval"] == 1
    assert rates["pg.checkpoints_requested_ratio"] == pytest.approx(0.75)
    assert rates["pg.checkpoint_write_seconds_per_second"] == pytest.approx(0.5)
    assert rates["pg.buffers_checkpoint_per_second"] == pytest.approx(100.0)
    assert rates["pg.buffers_backend_per_second"] == pytest.approx(2.0)
    assert "pg.checkpoints_requested_ratio" not in dict(source_rates("bgwriter", Interval(60.0, {
        "checkpoints_timed": 0, "checkpoints_requested": 0})))  # no checkpoint: no made-up share
    assert dict(source_rates("archiver", Interval(60.0, {"archived": 4, "archive_failed": 1}))) == {
        "pg.archived_in_interval": 4, "pg.archive_failed_in_interval": 1}


def test_queries_follow_the_server_version():
    assert "pg_stat_checkpointer" in bgwriter_sql(170000) and "checkpoints_req" in bgwriter_sql(160000)
    assert "AND toplevel" in statements_sql("public", 140000, 50) and "toplevel" not in statements_sql("public", 130000, 50)
    # A schema name from the catalogue is quoted, whatever it holds.
    assert '"we""ird".pg_stat_statements' in statements_sql('we"ird', 150000, 50)


@pytest.fixture()
def target(store, tmp_path, pg_database):
    with polled_database(store, tmp_path, pg_database[1]) as (rt, asset_id):
        yield rt, asset_id, pg_database[1]


def test_a_server_without_pg_stat_statements_still_gives_checkpointer_archiver_and_vacuum_numbers(target):
    rt, asset_id, url = target
    first = run_poll(rt, asset_id)
    assert first["problems"] == [] and first["dropped"] == {"bgwriter": "first poll"}
    run_statements(url, "CHECKPOINT")
    second = run_poll(rt, asset_id)
    assert second["dropped"] == {} and second["statements_ranked"] == []
    store = rt.store
    assert latest(store, asset_id, "pg.statements_available") == 0
    assert latest(store, asset_id, "pg.archive_mode") == 0 and latest(store, asset_id, "pg.archive_failing") is None
    assert latest(store, asset_id, "pg.vacuums_running") == 0
    assert latest(store, asset_id, "pg.wal_directory_files") >= 1
    assert latest(store, asset_id, "pg.wal_directory_bytes") >= 16 * 2**20 * latest(store, asset_id, "pg.wal_directory_files") / 2
    # The shared server runs other tests' checkpoints too: at least the one asked for here.
    assert latest(store, asset_id, "pg.checkpoints_requested_in_interval") >= 1
    assert latest(store, asset_id, "pg.bgwriter.checkpoints_requested") >= 1
    with store.session() as s:
        assert not s.scalars(select(Event).where(Event.type.like("metrics.pg_medium.%"))).all()
        state = s.get(MetricPollState, (asset_id, "pg_medium"))
        assert set(state.counters["lives"]) == {"bgwriter"} and "statements" not in state.counters


def test_every_postgresql_asset_falls_due_once_per_medium_interval_with_per_asset_overrides(store, tmp_path):
    from datetime import datetime, timedelta, timezone

    rt = make_runtime(store, tmp_path, {"metrics": {"assets": {"busy-db": {"medium_interval": 300}}}})
    conn = {"host": "127.0.0.1", "port": 5432, "database": "x", "user": "postgres", "sslmode": "disable",
            "insecure": True}
    plain = add_asset(store, name="plain-db", engine="postgresql", connection=conn)
    busy = add_asset(store, name="busy-db", engine="postgresql", connection=conn)
    sent = []
    rt.dispatch_many = lambda task, kwargs: sent.extend((task, k["asset_id"]) for k in kwargs)
    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
    assert dispatch_due(rt, t0)["asset_ids"] == [plain, busy]  # never polled: at once
    assert sent == [("metrics.pg_medium", plain), ("metrics.pg_medium", busy)]
    later = [a for step in range(1, 601) for a in due_assets(rt, t0 + timedelta(seconds=step))]
    assert later.count(plain) == 10 and later.count(busy) == 2


def test_an_unreachable_server_is_reported_once_under_the_medium_collector(store, tmp_path):
    from monitor_app.errors import DbmonError
    from tests.services import free_port

    rt = make_runtime(store, tmp_path)
    rt.settings.collector_failures_before_event = 1
    asset_id = add_asset(store, name="gone-db", engine="postgresql",
                         connection={"host": "127.0.0.1", "port": free_port(), "database": "x", "user": "postgres",
                                     "sslmode": "disable", "insecure": True})
    for _ in range(2):
        with pytest.raises(DbmonError, match="^refused: "):
            run_poll(rt, asset_id)
    with store.session() as s:
        assert [e.type for e in s.scalars(select(Event).where(Event.type.like("metrics.pg_%")))] == [
            "metrics.pg_medium.check_failed"]
