"""Cursor, annotations and backoff of the event follower (the engine-facing part is in test_lifecycle_engine)."""

from __future__ import annotations

from datetime import datetime, timezone

from monitor_app.containers.event_stream import Annotator, Backoff, Cursor, CursorStore, to_task_kwargs
from monitor_app.containers.lifecycle import FlappingPolicy, Memory, classify, exit_pending, flapping, remember


def test_the_cursor_skips_what_was_handed_on_including_events_sharing_the_last_instant():
    c = Cursor()
    assert c.since is None
    c.advance(1_700_000_000_123_456_789, "a:start")
    c.advance(1_700_000_000_123_456_789, "b:start")
    assert c.since == "1700000000.123456789"
    assert c.seen(1_700_000_000_123_456_789, "a:start") and c.seen(1_700_000_000_123_456_789, "b:start")
    assert not c.seen(1_700_000_000_123_456_789, "c:start")  # same instant, not yet handed on
    assert c.seen(1_699_999_999_000_000_000, "z:die") and not c.seen(1_700_000_000_123_456_790, "a:die")
    c.advance(1_700_000_001_000_000_000, "a:die")
    assert c.keys == ["a:die"]


def test_the_cursor_survives_in_the_store(store):
    cursors = CursorStore(store)
    assert cursors.load("docker:X").time_nano == 0
    c = Cursor(5, ["a:start"])
    cursors.save("docker:X", c)
    c.advance(7, "b:kill")
    cursors.save("docker:X", c)
    assert cursors.load("docker:X") == Cursor(7, ["b:kill"])


def _ev(cid, action, nano, **attrs):
    return {"id": cid, "Action": action, "timeNano": nano, "Actor": {"ID": cid, "Attributes": {"name": "n", **attrs}}}


def test_a_die_after_a_kill_is_annotated_and_only_dbmon_labels_are_forwarded():
    a = Annotator()
    to_task_kwargs(_ev("c1", "kill", 100, signal="15"), a)
    die = to_task_kwargs(_ev("c1", "die", 200, exitCode="143", secret_label="x", **{"dbmon.engine": "redis"}), a)
    assert die["attributes"] == {"name": "n", "exitCode": "143", "dbmon.engine": "redis", "dbmon.after_stop": True,
                                 "dbmon.graceful_stop": True}  # the kill was a SIGTERM, as `docker stop` sends
    to_task_kwargs(_ev("c4", "kill", 250, signal="9"), a)
    killed = to_task_kwargs(_ev("c4", "die", 251, exitCode="137"), a)["attributes"]
    assert killed["dbmon.after_stop"] is True and "dbmon.graceful_stop" not in killed  # `docker kill`
    crash = to_task_kwargs(_ev("c2", "die", 300, exitCode="1"), a)
    assert "dbmon.after_stop" not in crash["attributes"]
    to_task_kwargs(_ev("c3", "oom", 400), a)
    assert to_task_kwargs(_ev("c3", "die", 401, exitCode="137"), a)["attributes"]["dbmon.after_oom"] is True


def test_backoff_grows_with_jitter_up_to_a_cap_and_resets():
    b = Backoff(0.5, 4)
    delays = [b.next() for _ in range(8)]
    assert 0.25 <= delays[0] <= 0.5 and all(2 <= d <= 4 for d in delays[4:])
    b.reset()
    assert b.next() <= 0.5


def test_classification_of_a_policy_restart_and_flapping_windows():
    m = Memory(name="db", restart_count=0)
    die = classify("die", {"exitCode": "1"}, 10, m, restart_count=1)
    assert die[0].severity == "warning" and die[0].counts_as_unplanned
    remember("die", 10, m, restart_count=1)
    assert m.restart_count == 0  # a die does not absorb the restart the engine already counted
    start = classify("start", {}, 20, m, restart_count=1)
    assert [f.type for f in start] == ["container.start", "container.unplanned_restart"]
    policy = FlappingPolicy(restarts=3, minutes=1)
    minute = 60 * 10**9
    assert flapping([0, minute // 2], minute // 2, policy) is None
    assert flapping([0, 10, minute // 2], minute // 2, policy).severity == "critical"
    assert flapping([0, 10, 2 * minute], 2 * minute, policy) is None  # spread over more than the window
    planned = classify("die", {"exitCode": "0"}, 5 * minute, Memory(name="db", stop_requested_nano=4 * minute))
    assert planned[0].severity == "info" and planned[0].payload["planned"]


def test_a_failing_probe_leaves_the_verdict_to_the_die_event_of_a_container_that_just_stopped():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert exit_pending("exited", "2026-01-01T11:59:58.123456789Z", now)  # its die event is on the way
    assert exit_pending(None, None, now)  # removed: its destroy event decides
    assert not exit_pending("exited", "2026-01-01T11:58:00.000000000Z", now)  # no watcher: the probe decides
    assert not exit_pending("running", "0001-01-01T00:00:00Z", now)  # running and refusing: an outage
