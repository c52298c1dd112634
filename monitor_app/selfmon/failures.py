"""The share of task runs that failed lately, overall and for the tasks that fail most.

Read from the ledger: a run finishes `done` or `failed` (a crash, retries exhausted, a permanent
error, or given up after too many deliveries). A handful of runs says little, so no ratio is
given below MIN_FINISHED finished runs in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor_app.store.models import TaskRun

WINDOW = timedelta(minutes=15)
MIN_FINISHED = 10
TOP_TASKS = 10
MAX_ERROR = 300
# Runs finished in the window but requested longer ago than this are left out: the bound lets
# the read use the ledger's requested_at index instead of scanning a week of finished runs.
REQUEST_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class TaskFailures:
    window_seconds: float
    finished: int
    failed: int
    ratio: float | None
    by_task: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"window_seconds": self.window_seconds, "finished": self.finished, "failed": self.failed,
                "failure_ratio": self.ratio, "by_task": self.by_task}


def _ratio(failed: int, finished: int, minimum: int) -> float | None:
    return round(failed / finished, 4) if finished >= minimum and finished else None


def _last_error(session: Session, name: str, since: datetime) -> str | None:
    error = session.scalar(select(TaskRun.error).where(
        TaskRun.requested_at >= since - REQUEST_LOOKBACK, TaskRun.name == name, TaskRun.status == "failed",
        TaskRun.finished_at >= since).order_by(TaskRun.finished_at.desc()).limit(1))
    return error[:MAX_ERROR] if error else None


def failure_rate(session: Session, now: datetime, window: timedelta = WINDOW) -> TaskFailures:
    since = now - window
    rows = session.execute(
        select(TaskRun.name, TaskRun.status, func.count())
        .where(TaskRun.requested_at >= since - REQUEST_LOOKBACK, TaskRun.status.in_(("done", "failed")),
               TaskRun.finished_at >= since, TaskRun.finished_at <= now)
        .group_by(TaskRun.name, TaskRun.status)).all()
    per_task: dict[str, list[int]] = {}
    for name, status, count in rows:
        counts = per_task.setdefault(name, [0, 0])
        counts[0] += int(count)
        if status == "failed":
            counts[1] += int(count)
    finished = sum(c[0] for c in per_task.values())
    failed = sum(c[1] for c in per_task.values())
    worst = sorted(((name, c) for name, c in per_task.items() if c[1]), key=lambda item: (-item[1][1], item[0]))
    by_task = [{"name": name, "finished": total, "failed": bad, "failure_ratio": round(bad / total, 4),
                "last_error": _last_error(session, name, since)} for name, (total, bad) in worst[:TOP_TASKS]]
    return TaskFailures(window.total_seconds(), finished, failed, _ratio(failed, finished, MIN_FINISHED), by_task)
