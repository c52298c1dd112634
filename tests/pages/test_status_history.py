"""The 90-day status history: worst status per UTC day, from lifecycle events, one query for all assets."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import event

from monitor_app.assets import lifecycle
from monitor_app.platform.event_log import record_event
from monitor_app.status.status_history import Transition, build_history, histories
from monitor_app.store.models import Asset

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)


def at(days_ago: int, hour: int) -> datetime:
    return datetime.combine(NOW.date() - timedelta(days=days_ago), time(hour), tzinfo=timezone.utc)


def statuses(history) -> dict[int, str]:
    """days ago -> cell status"""
    return {(NOW.date() - c.day).days: c.status for c in history.cells}


def test_each_day_shows_its_worst_status_and_uptime_counts_up_against_down():
    history = build_history(created_at=at(30, 0), current_status="up", now=NOW, transitions=[
        Transition(at(30, 0), "unknown", None), Transition(at(30, 0) + timedelta(seconds=5), "up", "unknown"),
        Transition(at(5, 10), "down", "up"), Transition(at(3, 9), "up", "down"),
        Transition(at(1, 12), "stopped", "up"), Transition(at(1, 13), "up", "stopped")])
    days = statuses(history)
    assert len(history.cells) == 90 and history.cells[-1].day == NOW.date()
    assert {days[d] for d in range(31, 90)} == {"none"}  # before the asset existed
    assert days[30] == "up"  # a few seconds unchecked after registration do not grey the day
    assert [days[d] for d in (6, 5, 4, 3, 2, 1, 0)] == ["up", "down", "down", "down", "up", "stopped", "up"]
    down = (at(3, 9) - at(5, 10)).total_seconds()
    up = (NOW - at(30, 0)).total_seconds() - 5 - down - 3600
    assert abs(history.uptime_percent - 100 * up / (up + down)) < 1e-9
    assert "3 days down" in history.summary and "59 days no data" in history.summary


def test_without_events_in_the_window_the_current_status_holds_throughout():
    history = build_history(created_at=at(400, 0), current_status="down", transitions=[], now=NOW)
    assert set(statuses(history).values()) == {"down"} and history.uptime_percent == 0.0


def test_the_status_before_the_first_event_comes_from_its_previous_and_bad_payloads_are_ignored():
    history = build_history(created_at=at(200, 0), current_status="down", now=NOW,
                            transitions=[Transition(at(10, 12), "down", "up")])
    days = statuses(history)
    assert days[89] == "up" and days[11] == "up" and days[10] == "down" and days[0] == "down"
    unknown_before = build_history(created_at=at(200, 0), current_status="up", now=NOW,
                                   transitions=[Transition(at(10, 12), "up", None)])
    assert statuses(unknown_before)[20] == "none" and statuses(unknown_before)[10] == "up"


def test_histories_come_from_lifecycle_events_with_one_query_for_all_assets(store):
    with store.session() as s:
        assets = []
        for i in range(5):
            a = Asset(kind="database", engine="postgresql", name=f"db{i}", source="config", external_id=f"db{i}",
                      labels={}, connection={}, details={}, status="up", created_at=NOW - timedelta(days=30))
            s.add(a)
            assets.append(a)
        s.flush()
        target = assets[2]
        assert lifecycle.fail(s, target, "db2 crashed", observed_at=at(5, 10), now=at(5, 10))
        record_event(s, type="asset.up", asset_id=target.id, summary="db2 is back", observed_at=at(3, 9),
                     payload={"previous": "down", "source": "config"})
        record_event(s, type="asset.down", asset_id=assets[4].id, summary="far back", observed_at=NOW - timedelta(days=120),
                     payload={"previous": "up"})
        target.status = "up"
        ids = [a.id for a in assets]

    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):
        if "FROM events" in statement:
            statements.append(statement)

    event.listen(store.sql_engine, "before_cursor_execute", count)
    try:
        with store.session() as s:
            loaded = [s.get(Asset, i) for i in ids]
            found = histories(s, loaded, NOW)
    finally:
        event.remove(store.sql_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    days = statuses(found[ids[2]])
    assert [days[d] for d in (6, 5, 4, 3, 2)] == ["up", "down", "down", "down", "up"]
    assert days[31] == "none" and days[29] == "up"
    for other in (0, 1, 3, 4):  # the 120-day-old event is outside the window
        assert set(statuses(found[ids[other]]).values()) == {"none", "up"}
