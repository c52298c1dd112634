"""One leader among several watchers: the lease in Redis (distributed) or a file lock (embedded),
and two real watcher processes of which only one pushes events, the other taking over when the
first is killed."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from monitor_app.platform.leader_lease import FileLease, RedisLease, redis_client
from tests.harness import Deployment, wait_for
from tests.services import missing


@pytest.fixture
def shared_redis():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing(f"Redis at 127.0.0.1:6379 ({exc})")
    keys: list[str] = []
    yield client, keys
    if keys:
        client.delete(*keys)
    client.close()


def test_only_one_holder_of_a_redis_lease_and_a_standby_takes_it_when_it_expires(shared_redis):
    client, keys = shared_redis
    key = f"dbmon-test:lease:{uuid.uuid4().hex}"
    keys.append(key)
    leader, standby = RedisLease(client, key, ttl=1.0), RedisLease(client, key, ttl=1.0)
    assert leader.hold() and not standby.hold()
    assert leader.hold()  # a renewal keeps it
    assert leader.current_holder() == leader.holder
    time.sleep(0.6)
    assert leader.hold() and not standby.hold()  # renewed before its expiry: still the leader's
    started = time.monotonic()
    wait_for(standby.hold, 3, interval=0.05, what="the standby takes the expired lease")
    assert 0.5 < time.monotonic() - started < 2.5
    assert not leader.hold()  # the old leader learns it lost


def test_a_released_redis_lease_is_taken_at_once_and_only_its_holder_can_release_it(shared_redis):
    client, keys = shared_redis
    key = f"dbmon-test:lease:{uuid.uuid4().hex}"
    keys.append(key)
    leader, standby = RedisLease(client, key, ttl=30), RedisLease(client, key, ttl=30)
    assert leader.hold()
    standby.release()  # not its lease: nothing happens
    assert not standby.hold()
    leader.release()
    assert standby.hold() and standby.current_holder() == standby.holder


@pytest.mark.slow
def test_a_leader_that_cannot_reach_redis_leads_only_until_its_lease_would_expire(tmp_path):
    from tests.harness import RedisServer

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        lease = RedisLease(redis_client(server.url, 1.5), "dbmon:lease:watcher", ttl=1.5)
        assert lease.hold()
        renewed = time.monotonic()
        server.stop()
        assert lease.hold()  # Redis is gone, but the last renewal still lasts
        assert time.monotonic() - renewed < 1.0
        wait_for(lambda: not lease.hold(), 3, interval=0.05, what="leadership ends with the lease")
        assert time.monotonic() - renewed >= 1.4
    finally:
        server.stop()


def test_a_file_lease_has_one_holder_per_file_until_released(tmp_path):
    first, second = FileLease(tmp_path / "watcher.lease"), FileLease(tmp_path / "watcher.lease")
    assert first.hold() and first.hold()
    assert not second.hold()
    first.release()
    assert second.hold() and not first.hold()
    second.release()


def _leading(d: Deployment, name: str) -> bool:
    return "leads: starting the watch sources" in d.log(name)


def _watcher_syncs(d: Deployment) -> int:
    from sqlalchemy import func, select

    from monitor_app.store.models import TaskRun

    with d.runtime.store.session() as s:
        return s.scalar(select(func.count()).select_from(TaskRun).where(
            TaskRun.name == "assets.sync_config", TaskRun.requested_by == "watcher"))


@pytest.mark.slow
@pytest.mark.deployment
def test_two_watchers_push_each_event_once_and_the_standby_takes_over_when_the_leader_is_killed(tmp_path):
    d = Deployment("distributed", tmp_path, {"DBMON_LEADER_LEASE_SECONDS": "3"})
    try:
        d.migrate()
        d.write_config("assets: []\n")
        d.start("watcher-a", "watcher", "--source", "config")
        wait_for(lambda: _leading(d, "watcher-a"), 30, what="the first watcher leads")
        d.start("watcher-b", "watcher", "--source", "config")
        wait_for(lambda: "is a standby" in d.log("watcher-b"), 30, what="the second watcher stands by")
        # The config source pushes one sync when it starts: once in all, not once per watcher.
        wait_for(lambda: _watcher_syncs(d) == 1, 10, what="the leader's start-up sync")
        time.sleep(2)
        assert _watcher_syncs(d) == 1 and not _leading(d, "watcher-b")

        d.write_config("assets: []\n# edited\n")
        wait_for(lambda: _watcher_syncs(d) > 1, 10, what="the leader pushes the edit")
        before_kill = _watcher_syncs(d)

        killed_at = time.monotonic()
        d.kill("watcher-a", signal.SIGKILL)  # no release: the standby waits for the lease to expire
        wait_for(lambda: _leading(d, "watcher-b"), 15, what="the standby takes over")
        took_over_in = time.monotonic() - killed_at
        assert took_over_in < 3 + 3, took_over_in  # the TTL, a renewal period, and slack for a loaded machine
        wait_for(lambda: _watcher_syncs(d) == before_kill + 1, 10, what="the new leader's start-up sync")

        d.write_config("assets: []\n# edited again\n")
        wait_for(lambda: _watcher_syncs(d) > before_kill + 1, 10, what="the new leader pushes the next edit")

        # A clean stop hands the lease over at once: a third watcher leads without waiting for the TTL.
        d.start("watcher-c", "watcher", "--source", "config")
        wait_for(lambda: "is a standby" in d.log("watcher-c"), 30, what="the third watcher stands by")
        stopped_at = time.monotonic()
        d.kill("watcher-b", signal.SIGTERM)
        wait_for(lambda: _leading(d, "watcher-c"), 10, what="the standby leads after a clean stop")
        assert time.monotonic() - stopped_at < 3, "a clean stop released the lease"
    finally:
        d.close()


@pytest.mark.slow
@pytest.mark.deployment
def test_a_second_beat_waits_for_the_lease_and_takes_over_when_the_first_is_killed(tmp_path):
    d = Deployment("distributed", tmp_path, {"DBMON_LEADER_LEASE_SECONDS": "3"})
    try:
        d.migrate()
        d.write_config("assets: []\n")
        d.start("beat-a", "beat")
        wait_for(lambda: "Acquired lock" in d.log("beat-a"), 30, what="the first beat takes the lease")
        d.start("beat-b", "beat")
        wait_for(lambda: "beat: Starting" in d.log("beat-b"), 30, what="the second beat starts")
        time.sleep(4)  # longer than the lease: the first keeps renewing it
        assert "Acquired lock" not in d.log("beat-b")
        killed_at = time.monotonic()
        d.kill("beat-a", signal.SIGKILL)
        wait_for(lambda: "Acquired lock" in d.log("beat-b"), 20, what="the second beat takes over")
        assert time.monotonic() - killed_at < 3 + 3
    finally:
        d.close()
