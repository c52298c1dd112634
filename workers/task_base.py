"""`@dbmon_task`: every task gets a queue, time limits, retries with backoff, late acks,
and a ledger row whose lease it keeps renewed while it runs."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from functools import wraps
from typing import Callable

from celery.exceptions import Retry, SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import OperationalError

from monitor_app.errors import DbmonError
from monitor_app.platform import own_metrics
from monitor_app.platform.runtime import Runtime
from monitor_app.platform.task_queues import queue_for
from monitor_app.store.base import utcnow
from workers.celery_app import app

log = logging.getLogger("dbmon.tasks")
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def current_runtime() -> Runtime | None:
    """This process's runtime if a task has built one, without building it."""
    return _runtime


@worker_process_init.connect
def _fresh_runtime_after_fork(**_):
    # A connection pool inherited across fork would be shared by two processes.
    global _runtime
    _runtime = None


@worker_process_shutdown.connect
def _pool_process_exits(pid=None, **_):
    own_metrics.mark_process_dead(pid or os.getpid())


def _queued_since(rt: Runtime, run_id: str) -> datetime | None:
    """When the run was asked for, if this is its first start: a retry's wait is its backoff, and a
    run beat sent straight to the broker is unknown to the ledger until it is claimed."""
    try:
        run = rt.ledger.get(run_id)
    except Exception:  # noqa: BLE001 - only a metric is lost; the claim reports a broken store
        return None
    return run.requested_at if run is not None and run.attempts == 0 else None


class _LeaseKeeper:
    def __init__(self, rt: Runtime, run_id: str):
        self.rt, self.run_id = rt, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"lease-{run_id[:8]}")

    def _loop(self):
        period = max(0.2, self.rt.ledger.policy.running_lease / 3)
        while not self._stop.wait(period):
            try:
                self.rt.ledger.renew(self.run_id)
            except Exception:  # noqa: BLE001 - a missed renewal only risks a harmless re-run
                log.warning("lease renewal failed for %s", self.run_id, exc_info=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)


def fan_out(rt: Runtime, task: str, asset_ids: list[int]) -> dict:
    """One `task` per asset, so a hung target delays only its own run. The runs are recorded in
    one ledger transaction: a thousand assets cost one INSERT, not a thousand commits. An asset
    whose previous run of `task` is still queued or running gets none: with a backlog longer than
    the sweep's period, each sweep would otherwise add another run per asset behind it."""
    pending = rt.ledger.pending_assets(task)
    fresh = [asset_id for asset_id in asset_ids if asset_id not in pending]
    rt.dispatch_many(task, [{"asset_id": asset_id} for asset_id in fresh])
    return {"dispatched": len(fresh), "asset_ids": fresh, "already_pending": len(asset_ids) - len(fresh)}


def backoff(retries: int, base: float = 2.0, cap: float = 300.0) -> float:
    return min(cap, base * (2 ** retries))


def dbmon_task(name: str, *, time_limit: float = 120, max_retries: int = 5,
               backoff_base: float = 2.0, backoff_cap: float = 300.0):
    # The queue comes from the name's first part (platform/task_queues.py), the one place queues are declared.
    queue = queue_for(name)

    def decorate(fn: Callable[..., dict | None]):
        @app.task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True,
                  time_limit=time_limit, soft_time_limit=max(1, time_limit - 5), max_retries=max_retries,
                  autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=int(backoff_cap))
        @wraps(fn)
        def task(self, **kwargs):
            rt = get_runtime()
            run_id = self.request.id
            queued_since = _queued_since(rt, run_id)
            if not rt.ledger.claim(run_id, name=name, kwargs=kwargs, queue=queue):
                log.info("%s %s: already done or running elsewhere; skipped", name, run_id)
                return None
            own_metrics.task_started(queue, queued_since, utcnow())
            started = time.monotonic()
            try:
                with _LeaseKeeper(rt, run_id):
                    result = fn(rt, **kwargs)
            except Retry:
                own_metrics.task_finished(name, "retried", time.monotonic() - started)
                raise
            except (DbmonError, SoftTimeLimitExceeded, OperationalError, OSError) as exc:
                permanent = getattr(exc, "permanent", False)
                if permanent or self.request.retries >= max_retries:
                    rt.ledger.fail(run_id, _describe(exc))
                    own_metrics.task_finished(name, "failed", time.monotonic() - started)
                    log.error("%s %s failed: %s", name, run_id, _describe(exc))
                    return None
                countdown = backoff(self.request.retries, backoff_base, backoff_cap)
                rt.ledger.requeue(run_id, _describe(exc), countdown)
                own_metrics.task_finished(name, "retried", time.monotonic() - started)
                raise self.retry(exc=exc, countdown=countdown) from exc
            except Exception as exc:  # noqa: BLE001 - a bug: record it, do not loop on it
                rt.ledger.fail(run_id, _describe(exc))
                own_metrics.task_finished(name, "failed", time.monotonic() - started)
                log.exception("%s %s crashed", name, run_id)
                return None
            rt.ledger.finish(run_id, result if isinstance(result, dict) else {"result": result})
            own_metrics.task_finished(name, "succeeded", time.monotonic() - started)
            return None

        task.domain_fn = fn
        return task

    return decorate


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
