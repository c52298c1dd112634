"""The self-check (`selfmon.check`, from beat every DBMON_SELFMON_CHECK_INTERVAL): take the
snapshot, write dbmon's series, forget long-gone components, ping the dead-man's switch.

Beat schedules the check, and beat schedules rule evaluation: with beat dead neither would run,
and `DbmonBeatSilent` could never fire. So the leading watcher stands in: when beat's row is
dead it sends the check itself, and a check that finds beat dead asks for the metric rules to
be evaluated. With every worker dead nothing in dbmon can page; that is the dead-man's switch's
case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor_app.platform.runtime import Runtime
from monitor_app.selfmon import state
from monitor_app.selfmon.components import components, forget
from monitor_app.selfmon.deadman import maybe_ping
from monitor_app.selfmon.liveness import assess
from monitor_app.selfmon.series import dbmon_asset, snapshot_samples
from monitor_app.selfmon.snapshot import CHECK_STATE, take_snapshot
from monitor_app.store.base import utcnow
from monitor_app.store.models import TaskRun

CHECK_TASK = "selfmon.check"
EVALUATE_TASK = "alerts.evaluate_metrics"
BEAT_ALIVE, BEAT_DEAD_CHECK_PENDING, BEAT_DEAD = "beat alive", "beat dead, check pending", "beat dead"


def run_check(rt: Runtime, now: datetime | None = None) -> dict:
    now = now or utcnow()
    snap = take_snapshot(rt.store, rt.settings, now)
    if not snap.store["ok"]:
        return {"healthy": False, "problems": snap.problems, "samples": 0}
    with rt.store.session() as s:
        asset_id = dbmon_asset(s, now).id
        forgotten = forget(s, now, rt.settings.selfmon_forget_after)
    written = rt.series_writer.write(snapshot_samples(asset_id, snap, now))
    state.remember(rt.store, CHECK_STATE, now, {"healthy": snap.healthy, "problems": snap.problems[:20]})
    deadman = maybe_ping(rt.store, rt.settings, snap.healthy, now, snap.problems)
    beat = snap.assessment.beat if snap.assessment is not None else None
    stood_in = bool(beat and not beat["ok"] and beat["age_seconds"] is not None)
    if stood_in:
        rt.dispatch(EVALUATE_TASK, requested_by="selfmon")  # beat would have; it is silent
    return {"healthy": snap.healthy, "problems": snap.problems[:20], "samples": written, "forgotten": forgotten,
            "deadman": deadman, "evaluation_requested": stood_in}


def beat_stand_in(session: Session, now: datetime) -> str:
    """`beat alive`, `beat dead, check pending` or `beat dead`: the watcher sends the check only in
    the last case (standing in for a long outage must not pile checks up behind dead workers). A
    beat that never reported is not judged: a deployment may schedule from elsewhere."""
    beat = assess(components(session, now, ("beat",))).beat
    if beat["ok"] or beat["age_seconds"] is None:
        return BEAT_ALIVE
    pending = session.scalar(select(func.count()).select_from(TaskRun).where(
        TaskRun.name == CHECK_TASK, TaskRun.status.in_(("queued", "running"))))
    return BEAT_DEAD_CHECK_PENDING if pending else BEAT_DEAD
