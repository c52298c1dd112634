"""Polling a real PostgreSQL asset's fast tier in tests, and reading back what was stored."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import psycopg2
from sqlalchemy import select

from monitor_app.errors import DbmonError
from monitor_app.metrics.pg_fast import run_poll
from monitor_app.store.models import Event, MetricSeries


@contextmanager
def polled_database(store, tmp_path, url: str, config: dict | None = None):
    """(runtime, asset id) of a PostgreSQL asset `orders-db` on `url`; its kept connections are
    closed at the end."""
    from tests.schema.conftest import add_asset, make_runtime, pg_connection

    rt = make_runtime(store, tmp_path, config)
    asset_id = add_asset(store, name="orders-db", engine="postgresql", connection=pg_connection(url))
    try:
        yield rt, asset_id
    finally:
        rt.pg_sessions.close()


def poll(rt, asset_id: int) -> dict:
    return run_poll(rt, asset_id)


def failed_poll(rt, asset_id: int) -> str:
    try:
        run_poll(rt, asset_id)
    except DbmonError as exc:
        return exc.message
    raise AssertionError("the poll was expected to fail")


def latest(store, asset_id: int, name: str, **labels) -> float | None:
    with store.session() as s:
        for series in s.scalars(select(MetricSeries).where(MetricSeries.asset_id == asset_id,
                                                           MetricSeries.name == name)):
            if series.labels == labels:
                return series.last_value
    return None


def all_latest(store, asset_id: int) -> dict[str, float]:
    with store.session() as s:
        return {s_.name + (str(sorted(s_.labels.items())) if s_.labels else ""): s_.last_value
                for s_ in s.scalars(select(MetricSeries).where(MetricSeries.asset_id == asset_id))}


def health_events(store) -> list[str]:
    with store.session() as s:
        return [e.type for e in s.scalars(select(Event).where(Event.type.like("metrics.pg_fast.%")).order_by(Event.id))]


def run_statements(url: str, *statements: str, application_name: str = "load") -> None:
    """On a connection of its own, closed at the end: a backend's statistics are flushed when it exits."""
    conn = psycopg2.connect(url, application_name=application_name)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def commits_and_rollbacks(url: str, commits: int, rollbacks: int) -> None:
    conn = psycopg2.connect(url, application_name="load")
    try:
        with conn.cursor() as cur:
            for _ in range(commits):
                cur.execute("SELECT 1")
                conn.commit()
            for _ in range(rollbacks):
                cur.execute("SELECT 1")
                conn.rollback()
    finally:
        conn.close()


def real_deadlock(url: str) -> int:
    """Two sessions that lock two rows in opposite orders; returns how many were chosen as victims."""
    run_statements(url, "CREATE TABLE IF NOT EXISTS dl (id int PRIMARY KEY, v int)",
                   "INSERT INTO dl VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING")
    conns = [psycopg2.connect(url, application_name="load") for _ in range(2)]
    victims = []
    barrier = threading.Barrier(2)

    def worker(conn, first, second):
        try:
            with conn.cursor() as cur:
                cur.execute("UPDATE dl SET v = v + 1 WHERE id = %s", (first,))
                barrier.wait(timeout=10)
                cur.execute("UPDATE dl SET v = v + 1 WHERE id = %s", (second,))
            conn.commit()
        except psycopg2.errors.DeadlockDetected:
            conn.rollback()
            victims.append(first)

    threads = [threading.Thread(target=worker, args=(conns[0], 1, 2)),
               threading.Thread(target=worker, args=(conns[1], 2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for conn in conns:
        conn.close()
    return len(victims)
