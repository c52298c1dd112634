"""Alerting tasks: thin wrappers that call the engine and queue what it says is due.

Every task is safe to run twice: evaluation skips events already applied, delivery claims
its outbox row, and an escalation step checks its token under a row lock."""

from __future__ import annotations

from monitor_app.alerting.service import dispatch_deliveries, alert_operations_for
from monitor_app.platform.runtime import Runtime
from workers.task_base import dbmon_task


@dbmon_task("alerts.evaluate_events", time_limit=60)
def evaluate_events(rt: Runtime, event_ids: list[int]) -> dict:
    outcome = alert_operations_for(rt).evaluate_events(event_ids)
    dispatch_deliveries(rt, outcome.deliver)
    return outcome.as_dict()


@dbmon_task("alerts.evaluate_metrics", time_limit=120)
def evaluate_metrics(rt: Runtime) -> dict:
    outcome = alert_operations_for(rt).evaluate_metrics()
    dispatch_deliveries(rt, outcome.deliver)
    return outcome.as_dict()


@dbmon_task("alerts.deliver", time_limit=90, max_retries=0)
def deliver(rt: Runtime, notification_id: int) -> dict:
    # Retries belong to the outbox row (backoff, give-up age), not to this task.
    return alert_operations_for(rt).deliver(notification_id)


@dbmon_task("alerts.escalate", time_limit=60)
def escalate(rt: Runtime, incident_id: int, token: str) -> dict:
    result = alert_operations_for(rt).escalate(incident_id, token)
    dispatch_deliveries(rt, result["deliver"])
    return result


@dbmon_task("alerts.sweep_outbox", time_limit=120)
def sweep_outbox(rt: Runtime) -> dict:
    engine = alert_operations_for(rt)
    caught_up = engine.catch_up_events()
    dispatch_deliveries(rt, caught_up.deliver)
    outcome = engine.sweep()
    dispatch_deliveries(rt, outcome.deliver)
    for incident_id, token in outcome.escalate:
        rt.dispatch("alerts.escalate", {"incident_id": incident_id, "token": token})
    return {"caught_up": caught_up.as_dict(), **outcome.as_dict()}
