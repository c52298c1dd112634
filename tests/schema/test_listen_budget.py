"""Which databases of a server are listened on: budget less one, most recently changed first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from monitor_app.schema.listen_budget import Target, choose

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def target(asset_id: int, server: str = "a:5432", changed_minutes_ago: int | None = None) -> Target:
    changed = None if changed_minutes_ago is None else T0 - timedelta(minutes=changed_minutes_ago)
    return Target(asset_id, server, f"dbname=db{asset_id}", changed)


def ids(targets) -> list[int]:
    return [t.asset_id for t in targets]


def test_each_server_gets_budget_less_one_listeners_for_its_latest_changes():
    targets = [target(1), target(2, changed_minutes_ago=50), target(3, changed_minutes_ago=5), target(4),
               target(5, "b:5432"), target(6, "b:5432", changed_minutes_ago=1)]
    listened, fallback = choose(targets, {"a:5432": 3, "b:5432": 3}.get)
    assert ids(listened) == [3, 2, 6, 5]
    assert {server: ids(group) for server, group in fallback.items()} == {"a:5432": [1, 4]}


def test_a_change_outside_the_set_displaces_the_least_recent_listener():
    before = [target(1, changed_minutes_ago=10), target(2, changed_minutes_ago=20), target(3, changed_minutes_ago=30)]
    assert ids(choose(before, lambda _: 3)[0]) == [1, 2]
    after = [*before[:2], target(3, changed_minutes_ago=0)]
    listened, fallback = choose(after, lambda _: 3)
    assert ids(listened) == [3, 1] and ids(fallback["a:5432"]) == [2]


def test_a_budget_of_one_listens_nowhere_and_prechecks_everything():
    listened, fallback = choose([target(1), target(2)], lambda _: 1)
    assert listened == [] and ids(fallback["a:5432"]) == [1, 2]
