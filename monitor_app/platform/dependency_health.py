"""Can this process reach what it depends on?"""

from __future__ import annotations

import os
import time

from monitor_app.config.settings import Settings
from monitor_app.store.base import Store


def check_store(store: Store) -> dict:
    started = time.perf_counter()
    try:
        store.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2), "dialect": store.dialect}


def check_broker(settings: Settings) -> dict:
    started = time.perf_counter()
    if settings.embedded_broker:
        folder = settings.broker_dir / "queue"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        ok = folder.is_dir() and os.access(folder, os.W_OK)
        return {"ok": ok, "kind": "filesystem"} | ({} if ok else {"error": f"{folder} not writable"})
    import redis

    client = redis.Redis.from_url(settings.resolved_broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"ok": False, "kind": "redis", "error": type(exc).__name__}
    finally:
        client.close()
    return {"ok": True, "kind": "redis", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
