"""The PostgreSQL slow tier: sizes, vacuum health of the largest tables, unused indexes and
wraparound on a real database; setting changes on a private cluster (ALTER SYSTEM and a reload,
which the shared server must not go through)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.metrics.pg_slow import run_poll, setting_changes
from monitor_app.store.models import Event
from tests.metrics.pg_fast_helpers import latest, polled_database, run_statements
from tests.schema.conftest import add_asset, make_runtime


def test_setting_changes_name_what_was_set_changed_or_reset():
    before = {"work_mem": "4096", "max_connections": "100", "shared_buffers": "16384"}
    after = {"work_mem": "8192", "max_connections": "100", "log_min_duration_statement": "250"}
    assert setting_changes(before, after) == [("log_min_duration_statement", None, "250"),
                                              ("shared_buffers", "16384", None), ("work_mem", "4096", "8192")]
    assert setting_changes(None, after) == []  # the first poll is the baseline


@pytest.fixture()
def target(store, tmp_path, pg_database):
    with polled_database(store, tmp_path, pg_database[1], {"metrics": {"relations_top": 2}}) as (rt, asset_id):
        yield rt, asset_id, pg_database[1]


def test_it_reports_the_largest_tables_their_dead_tuples_unused_indexes_and_wraparound(target):
    rt, asset_id, url = target
    run_statements(url, "CREATE TABLE big (id int, pad text)", "CREATE TABLE small (id int)",
                   "CREATE TABLE tiny (id int)",
                   "INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g",
                   "INSERT INTO small SELECT generate_series(1, 100)", "INSERT INTO tiny VALUES (1)",
                   "CREATE INDEX big_pad ON big (pad)", "CREATE UNIQUE INDEX big_id ON big (id)",
                   "DELETE FROM big WHERE id <= 5000", "ANALYZE big, small, tiny")
    result = run_poll(rt, asset_id)
    assert result["problems"] == [] and result["settings_changed"] == []
    store = rt.store
    big = {"relation": "public.big"}
    assert latest(store, asset_id, "pg.relation_size_bytes", **big) > 1_000_000
    assert latest(store, asset_id, "pg.relation_size_bytes", relation="public.small") is not None
    assert latest(store, asset_id, "pg.relation_size_bytes", relation="public.tiny") is None  # top 2 only
    # A quarter deleted; the statistics count it once the deleting session has flushed them.
    assert 0.1 <= latest(store, asset_id, "pg.relation_dead_tuple_ratio", **big) <= 0.3
    assert latest(store, asset_id, "pg.relation_vacuum_age_seconds", **big) is None  # never vacuumed
    # Neither index was scanned; the unique one enforces something, so it is not "unused".
    assert latest(store, asset_id, "pg.unused_indexes") == 1
    assert latest(store, asset_id, "pg.unused_index_size_bytes", index="public.big_pad") > 0
    assert latest(store, asset_id, "pg.unused_index_size_bytes", index="public.big_id") is None
    assert latest(store, asset_id, "pg.database_size_bytes") > 1_000_000
    assert 0 < latest(store, asset_id, "pg.wraparound_ratio") < 1
    run_statements(url, "VACUUM big")
    run_poll(rt, asset_id)
    assert latest(store, asset_id, "pg.relation_vacuum_age_seconds", **big) < 60
    assert latest(store, asset_id, "pg.relation_dead_tuple_ratio", **big) < 0.05


@pytest.mark.slow
def test_a_changed_setting_is_an_event_naming_old_and_new_values(sqlite_store, tmp_path):
    from tests.posture.clusters import PrivateCluster

    cluster = PrivateCluster()
    try:
        cluster.start(listen="")
        rt = make_runtime(sqlite_store, tmp_path)
        asset_id = add_asset(sqlite_store, name="cluster-db", engine="postgresql", connection=cluster.connection())
        assert run_poll(rt, asset_id)["settings_changed"] == []  # the baseline
        cluster.run("ALTER SYSTEM SET work_mem = '7MB'", "ALTER SYSTEM SET shared_buffers = '64MB'",
                    "SELECT pg_reload_conf()")
        import time

        time.sleep(0.5)  # the kept session takes the reloaded file at its next command
        changed = run_poll(rt, asset_id)["settings_changed"]
        assert set(changed) >= {"work_mem", "shared_buffers"}
        with sqlite_store.session() as s:
            events = {e.payload["setting"]: e for e in s.scalars(select(Event).where(Event.type == "pg.setting_changed"))}
        assert events["work_mem"].payload["new"] == "7168" and events["work_mem"].severity == "info"
        assert events["work_mem"].payload["old"] is None  # it was at its default
        assert events["shared_buffers"].payload["pending_restart"] is True  # needs a restart to apply
        assert latest(sqlite_store, asset_id, "pg.settings_pending_restart") >= 1
        assert run_poll(rt, asset_id)["settings_changed"] == []  # reported once
        rt.pg_sessions.close()
    finally:
        cluster.stop()
