"""A 200-table MySQL/MariaDB schema: snapshot + diff and the pre-check, timed (printed) and bounded.

Loose ceilings for a shared machine; `bench/mysql_schema.py` measures the same properly."""

from __future__ import annotations

import statistics
import time

import pytest

from monitor_app.schema.diff import diff
from monitor_app.schema.mysql_connection import connect
from monitor_app.schema.mysql_precheck import mysql_marker
from monitor_app.schema.mysql_snapshot import take_snapshot
from tests.schema.mysql_scratch import MysqlScratch, build_schema, own_records


@pytest.fixture(scope="module")
def schema():
    db = MysqlScratch()
    build_schema(db.run, 200)
    conn = connect(db.dsn)
    yield db, conn
    conn.close()
    db.drop()


def _median(fn, runs: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), result


def test_snapshot_and_diff_of_200_tables(schema):
    db, conn = schema
    baseline = take_snapshot(conn)
    db.run("ALTER TABLE t7 ADD COLUMN extra int", "RENAME TABLE t8 TO t8_renamed")
    snap_s, current = _median(lambda: take_snapshot(conn), 3)
    diff_s, changes = _median(lambda: own_records(diff(baseline, current)), 3)
    print(f"\n200 tables, {len(current['objects'])} objects: snapshot {snap_s:.3f} s, diff {diff_s:.3f} s")
    assert [(c["action"], c["object"].split(".", 1)[1], c["renamed_from"] is not None) for c in changes] == [
        ("modified", "t8_renamed", True), ("added", "t7.extra", False)]
    assert snap_s + diff_s < 3.0


def test_precheck_of_200_tables(schema):
    _, conn = schema
    mysql_marker(conn)  # the server's table cache warm, as a periodic pre-check finds it
    median, _ = _median(lambda: mysql_marker(conn), 15)
    print(f"\npre-check of 200 tables: median {median * 1000:.1f} ms")
    assert median < 0.25
