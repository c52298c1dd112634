"""Audit rows for task runs that change what dbmon watches (discovery, config reloads).

The actor is whoever asked for the run, as the ledger has it: `system` for beat, `watcher`,
`startup`, or the key or OS user behind a scan request.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from monitor_app.access import audit
from monitor_app.platform.runtime import Runtime


@contextmanager
def audited_run(rt: Runtime, action: str, target: str = "") -> Iterator[audit.Draft]:
    from celery import current_task

    run_id = getattr(getattr(current_task, "request", None), "id", None)
    run = rt.ledger.get(run_id) if run_id else None
    actor = run.requested_by if run is not None else audit.SYSTEM
    with audit.recorded(rt.store, actor=actor, action=action, target=target,
                        detail={"run_id": run_id} if run_id else {}) as entry:
        yield entry
