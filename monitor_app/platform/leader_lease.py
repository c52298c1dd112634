"""One leader among several processes doing the same singleton work (the watcher).

Distributed mode: a key in Redis holding the leader's id with a time to live. The leader
renews it; a standby takes it once it expired, so a dead leader is replaced within the TTL
(plus the standby's polling period). Embedded mode runs on one machine: an flock on a file in
the data directory, released by the kernel when its holder dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import IO, Protocol

from monitor_app.config.settings import Settings

log = logging.getLogger("dbmon.lease")

# Take the key if free, keep it if ours; compare and act atomically in Redis.
_HOLD = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease(Protocol):
    holder: str

    def hold(self) -> bool:
        """Take or renew the lease; True while this process is the leader."""

    def release(self) -> None:
        """Give the lease up at once (a clean stop): a standby need not wait for it to expire."""


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLease:
    def __init__(self, client, key: str, ttl: float, holder: str | None = None):
        self.client, self.key, self.ttl = client, key, ttl
        self.holder = holder or holder_id()
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self._valid_until = 0.0

    def hold(self) -> bool:
        started = time.monotonic()
        try:
            held = bool(self._hold(keys=[self.key], args=[self.holder, int(self.ttl * 1000)]))
        except Exception as exc:  # noqa: BLE001 - Redis unreachable: lead only while the last renewal lasts
            still = time.monotonic() < self._valid_until
            log.warning("lease %s: cannot reach Redis (%s); %s", self.key, exc,
                        "leading until it expires" if still else "not leading")
            return still
        # Counted from before the call: the key may have been renewed at any point during it.
        self._valid_until = started + self.ttl if held else 0.0
        return held

    def release(self) -> None:
        self._valid_until = 0.0
        try:
            self._release(keys=[self.key], args=[self.holder])
        except Exception:  # noqa: BLE001 - it expires on its own
            log.warning("lease %s: could not release; it expires in %.0fs", self.key, self.ttl)

    def current_holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class FileLease:
    def __init__(self, path: Path):
        self.path = path
        self.holder = holder_id()
        self._file: IO[str] | None = None

    def hold(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def lease_for(settings: Settings, name: str) -> Lease:
    """The `name` lease of this deployment: in Redis when there is a broker URL, else a file lock."""
    if settings.embedded_broker:
        return FileLease(settings.data_dir / f"{name}.lease")
    client = redis_client(settings.resolved_broker_url, settings.leader_lease_seconds)
    return RedisLease(client, f"dbmon:lease:{name}", settings.leader_lease_seconds)


def redis_client(url: str, ttl: float):
    """A client that gives up within a third of the TTL: a renewal stuck in retries would
    outlast the lease it renews."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = max(0.2, ttl / 3)
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry=Retry(NoBackoff(), 0))
