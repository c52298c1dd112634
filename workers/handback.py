"""Runs in progress when a worker stops are handed back to the ledger, not left to time out.

SIGTERM starts Celery's warm shutdown, which waits for running tasks however long they take.
After `DBMON_WORKER_SHUTDOWN_SECONDS` every run still executing is set back to queued with an
expired lease, so the next redelivery sweep (every second) sends it to a worker that is still
up, and the worker ends the tasks itself: its pool processes are killed (the broker gets their
unacknowledged messages back, as when a machine dies), and a thread pool that cannot be
stopped ends with the process at once. The connection slots those tasks held are given back
too (the processes holding them are gone), so a worker started in their place need not wait
for the slots' leases to expire. Claims are conditional, so the broker's own redelivery of the
same message cannot make it run twice.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from celery.signals import worker_process_init, worker_shutting_down
from celery.worker import state

log = logging.getLogger("dbmon.handback")

# After its pool processes are killed, a prefork worker's own warm shutdown has this long to end.
PREFORK_EXIT_GRACE = 1.5
# With no task running, a worker still up this long after its tasks' deadline is stuck.
STALLED_STOP_GRACE = 10.0
_shutdown_began = time.monotonic()


def in_progress() -> list[str]:
    # Task ids are ledger run ids (the ledger records a run before it publishes it).
    return sorted(request.id for request in list(state.active_requests))


def hand_back_now(runtime_factory=None) -> int:
    runs = in_progress()
    if not runs:
        return 0
    if runtime_factory is None:
        from workers.task_base import get_runtime as runtime_factory
    handed = runtime_factory().ledger.hand_back(runs)
    log.warning("handed %d unfinished run(s) back to the ledger at shutdown", handed)
    return handed


@worker_shutting_down.connect
def _bound_the_shutdown(how: str = "", **_) -> None:
    from monitor_app.config.settings import get_settings

    global _shutdown_began
    _shutdown_began = time.monotonic()
    _stop_waiting_for_slots()
    # A cold shutdown does not wait for tasks; it still gets the backstop.
    delay = get_settings().worker_shutdown_seconds if how == "Warm" else 0.0
    timer = threading.Timer(delay, _give_up_waiting)
    timer.daemon = True
    timer.start()


@worker_process_init.connect
def _leave_stopping_to_the_parent(**_) -> None:
    """A pool process ignores SIGTERM: the worker that owns it decides when it stops.

    A whole process group gets SIGTERM when `dbmon up`, a supervisor or systemd stops a worker.
    A pool process killed then may die holding the lock of the pool's task queue, and the
    parent's warm shutdown waits on that lock for ever. Ignoring it, the pool process finishes its
    task and leaves when the parent closes the pool; one that must go is sent SIGKILL."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_waiting_for_slots() -> None:
    """A task waiting for a monitored server's connection slot gives up at once: deferred, retried later."""
    from workers.task_base import current_runtime

    rt = current_runtime()
    if rt is not None and "connection_budget" in rt.__dict__:
        rt.connection_budget.stop_waiting()


def _give_up_waiting() -> None:
    if not in_progress():
        # Nothing left to wait for: an orderly stop ends well within this. Past it, the stop is
        # stuck (a pool lock held by a pool process that died) and only exiting ends it.
        time.sleep(STALLED_STOP_GRACE)
        log.error("the worker's shutdown is stuck %.1f s after it began with no task running; exiting",
                  time.monotonic() - _shutdown_began)
        _give_back_slots(_kill_pool_processes())
        os._exit(1)
    try:
        hand_back_now()
    except Exception:  # noqa: BLE001 - the lease still brings the runs back, later
        log.exception("handing runs back failed; they return when their lease expires")
    killed = _kill_pool_processes()
    _give_back_slots(killed)
    if killed:
        # The pool notices its dead processes and the warm shutdown ends by itself; this is the backstop.
        time.sleep(PREFORK_EXIT_GRACE)
    # Still here: a thread-pool task cannot be stopped, and waiting longer would not stop it either.
    # Everything it held is back in the ledger and its slots are free.
    log.error("tasks still running %.1f s after shutdown began; exiting",
              time.monotonic() - _shutdown_began)
    os._exit(1)


def _kill_pool_processes() -> list[int]:
    import psutil

    killed = []
    for child in psutil.Process().children(recursive=True):
        try:
            child.send_signal(signal.SIGKILL)
            killed.append(child.pid)
        except psutil.Error:
            pass
    return killed


def _give_back_slots(killed: list[int]) -> None:
    """This process and the pool processes just killed hold no connection any more: free their slots."""
    from monitor_app.assets.connection_budget import release_slots_of_dead_processes
    from workers.task_base import get_runtime

    try:
        rt = get_runtime()  # built already: the hand-back used it
        if "connection_budget" in rt.__dict__:
            rt.connection_budget.close()
        release_slots_of_dead_processes(rt.store, killed)
    except Exception:  # noqa: BLE001 - unreleased slots expire on their own
        log.warning("giving back connection slots at shutdown failed; they expire by themselves", exc_info=True)
