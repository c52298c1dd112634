"""SQLite files under real write load: sizes, pages, write transactions, integrity, failures."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor_app.errors import DbmonError
from monitor_app.metrics.sqlite_file import read_file
from monitor_app.metrics.sqlite_tier import dispatch_due, run_poll
from monitor_app.store.base import utcnow
from monitor_app.store.models import Event
from tests.metrics.pg_fast_helpers import all_latest
from tests.schema.conftest import add_asset, make_runtime


def make_db(path, *, wal: bool, rows: int = 0) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    write(conn, rows)
    return conn


def write(conn: sqlite3.Connection, transactions: int) -> None:
    for _ in range(transactions):
        conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 200,))


def events(store, prefix: str) -> list[str]:
    with store.session() as s:
        return [e.type for e in s.scalars(select(Event).where(Event.type.like(f"{prefix}%")).order_by(Event.id))]


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_write_transactions_are_counted_from_the_file_itself(tmp_path, wal):
    path = tmp_path / "app.db"
    conn = make_db(path, wal=wal)
    before = read_file(path)
    write(conn, 25)
    after = read_file(path)
    assert before.journal_mode == ("wal" if wal else "delete")
    assert after.write_transactions - before.write_transactions == 25
    assert after.life == before.life
    if wal:
        assert after.gauges["sqlite.wal_bytes"] > 0 and after.gauges["sqlite.shm_bytes"] >= 32768
    conn.close()


def test_pages_free_pages_and_user_version_follow_the_file(tmp_path):
    path = tmp_path / "app.db"
    conn = make_db(path, wal=False, rows=400)
    conn.execute("PRAGMA user_version = 7")
    conn.execute("DELETE FROM t WHERE id % 2 = 0")  # frees pages, which stay in the file until VACUUM
    got = read_file(path).gauges
    assert got["sqlite.user_version"] == 7
    assert got["sqlite.pages_bytes"] == got["sqlite.page_count"] * got["sqlite.page_size"] == got["sqlite.file_bytes"]
    assert got["sqlite.freelist_pages"] > 0
    assert got["sqlite.freelist_ratio"] == pytest.approx(got["sqlite.freelist_pages"] / got["sqlite.page_count"])
    conn.execute("VACUUM")
    assert read_file(path).gauges["sqlite.freelist_pages"] == 0
    conn.close()


def test_reading_never_writes_the_file(tmp_path):
    path = tmp_path / "app.db"
    make_db(path, wal=False, rows=10).close()
    path.chmod(0o444)
    before = path.read_bytes()
    reading = read_file(path, quick_check=True)
    assert reading.integrity == "ok" and path.read_bytes() == before
    assert not (tmp_path / "app.db-journal").exists()


def test_a_damaged_file_fails_its_quick_check_and_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "app.db"
    make_db(path, wal=False, rows=300).close()
    page_size = 4096
    with open(path, "r+b") as f:  # scribble over the middle of the table's b-tree pages
        f.seek(page_size * 3 + 100)
        f.write(b"\xff" * 1500)
    reading = read_file(path, quick_check=True)
    assert reading.integrity not in (None, "ok"), reading
    assert reading.gauges["sqlite.integrity_ok"] == 0.0
    (tmp_path / "notes.txt").write_text("not a database" * 20)
    with pytest.raises(DbmonError, match="not an SQLite database"):
        read_file(tmp_path / "notes.txt")
    with pytest.raises(DbmonError, match="No such file"):
        read_file(tmp_path / "missing.db")


def test_a_quick_check_over_its_time_budget_is_abandoned(tmp_path):
    path = tmp_path / "big.db"
    conn = make_db(path, wal=False)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (body) VALUES (?)", (("y" * 500,) for _ in range(60_000)))
    conn.execute("COMMIT")
    conn.execute("CREATE INDEX t_body ON t (body)")
    conn.close()
    reading = read_file(path, quick_check=True, check_seconds=0.001)
    assert reading.integrity is None and "did not finish" in reading.problems[0]
    assert reading.gauges["sqlite.integrity_check_abandoned"] == 1.0 and "sqlite.integrity_ok" not in reading.gauges
    assert read_file(path, quick_check=True).gauges["sqlite.integrity_check_abandoned"] == 0.0


def test_an_abandoned_quick_check_is_a_series_not_a_collector_failure(store, tmp_path):
    path = tmp_path / "big.db"
    conn = make_db(path, wal=False)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (body) VALUES (?)", (("y" * 500,) for _ in range(60_000)))
    conn.execute("COMMIT")
    conn.close()
    rt = make_runtime(store, tmp_path, {"metrics": {"sqlite_quick_check_seconds": 0.001}})
    asset_id = add_asset(store, name="big-db", engine="sqlite", connection={"path": str(path)})
    result = run_poll(rt, asset_id)
    assert result["integrity"] is None and "did not finish" in result["problems"][0]
    assert all_latest(store, asset_id)["sqlite.integrity_check_abandoned"] == 1.0
    assert events(store, "metrics.sqlite.") == []


WRITER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
    end = time.monotonic() + float(sys.argv[2])
    n = 0
    while time.monotonic() < end:
        conn.execute("INSERT INTO t (body) VALUES ('z')")
        n += 1
        time.sleep(0.002)
    print(n)
""")
# The application: holds the database open (and so its WAL index) until its stdin closes.
HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1])
    conn.execute("SELECT count(*) FROM t").fetchone()
    print("open", flush=True)
    sys.stdin.read()
""")


def test_polls_store_the_write_rate_of_another_process_and_its_integrity(store, tmp_path):
    path = tmp_path / "app.db"
    make_db(path, wal=True).close()
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        t0 = utcnow()
        first = run_poll(rt, asset_id, now=t0)
        assert first["rates"] == "first poll" and first["integrity"] == "ok"
        writer = subprocess.run([sys.executable, "-c", WRITER, str(path), "1.5"], capture_output=True, text=True,
                                timeout=60, check=True)
        written = int(writer.stdout)
        second = run_poll(rt, asset_id, now=t0 + timedelta(seconds=10))
        assert second["rates"] == "interval" and second["integrity"] is None  # checked once a day
        got = all_latest(store, asset_id)
        # A WAL restart after an automatic checkpoint may count once more than the commits.
        assert written / 10 <= got["sqlite.write_transactions_per_s"] <= (written + 3) / 10
        assert got["sqlite.integrity_ok"] == 1.0 and got["sqlite.wal_bytes"] > 0
        assert events(store, "metrics.sqlite.") == []
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_a_missing_file_is_one_failure_event_and_its_return_one_recovery(store, tmp_path):
    path = tmp_path / "app.db"
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    for _ in range(2):
        with pytest.raises(DbmonError, match="No such file") as failed:
            run_poll(rt, asset_id)
        assert failed.value.permanent
    make_db(path, wal=False).close()
    run_poll(rt, asset_id)
    assert events(store, "metrics.sqlite.") == ["metrics.sqlite.check_failed", "metrics.sqlite.check_recovered"]


def test_integrity_failure_is_one_critical_event_until_a_check_passes_again(store, tmp_path):
    path = tmp_path / "app.db"
    make_db(path, wal=False, rows=300).close()
    good = path.read_bytes()
    rt = make_runtime(store, tmp_path, {"metrics": {"sqlite_quick_check_interval": 60}})
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    t0 = utcnow()
    with open(path, "r+b") as f:
        f.seek(4096 * 3 + 100)
        f.write(b"\xff" * 1500)
    for minutes in (0, 2):
        run_poll(rt, asset_id, now=t0 + timedelta(minutes=minutes))
    path.write_bytes(good)
    run_poll(rt, asset_id, now=t0 + timedelta(minutes=4))
    assert events(store, "sqlite.integrity") == ["sqlite.integrity_failed", "sqlite.integrity_restored"]


def test_every_sqlite_asset_falls_due_without_configuration_and_can_be_switched_off(store, tmp_path):
    rt = make_runtime(store, tmp_path, {"metrics": {"assets": {"quiet-db": {"enabled": False}}}})
    sent = []
    rt.dispatch_many = lambda task, kwargs_list: sent.extend((task, kw["asset_id"]) for kw in kwargs_list)
    app = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(tmp_path / "a.db")})
    add_asset(store, name="quiet-db", engine="sqlite", connection={"path": str(tmp_path / "b.db")})
    add_asset(store, name="no-path", engine="sqlite", connection={})
    assert dispatch_due(rt)["asset_ids"] == [app]
    assert sent == [("metrics.sqlite", app)]
    assert dispatch_due(rt)["asset_ids"] == []  # sent: not again before its next slot


def test_sqlite_settings_are_validated_by_field_and_overridden_per_asset():
    from monitor_app.config.declarative import parse_config
    from monitor_app.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config({"metrics": {"sqlite_quick_check_seconds": 0,
                                  "assets": {"app-db": {"sqlite_interval": "hourly"}}}})
    assert [path for path, _ in info.value.errors] == ["metrics.sqlite_quick_check_seconds",
                                                       "metrics.assets.app-db.sqlite_interval"]
    config = parse_config({"metrics": {"sqlite_interval": 120, "assets": {"app-db": {"sqlite_interval": 15}}}})
    assert (config.metrics.sqlite_interval_for("app-db"), config.metrics.sqlite_interval_for("other")) == (15, 120)
