"""Glue between a process's Runtime and the alerting engine: one engine per loaded
config, and the after-commit listener that sends new events to evaluation at once."""

from __future__ import annotations

import logging
from typing import Callable

from monitor_app.alerting.operations import AlertOperations

log = logging.getLogger("dbmon.alerting")
_ENGINE_ATTR = "_alerting_engine"


def alert_operations_for(rt) -> AlertOperations:
    """The runtime's engine, rebuilt when the config file was re-read."""
    config = rt.config
    cached = getattr(rt, _ENGINE_ATTR, None)
    if cached is not None and cached[0] is config:
        return cached[1]
    alerting = config.alerting
    if not alerting.public_url:
        alerting = alerting.model_copy(update={"public_url": rt.settings.api_base_url})
    engine = AlertOperations(rt.store, alerting, rt.settings.secret_keys())
    setattr(rt, _ENGINE_ATTR, (config, engine))
    return engine


def evaluate_after_commit(rt) -> Callable[[list[int]], None]:
    """A Store event listener: queue `alerts.evaluate_events` for the ids just committed.

    It must never break the writer that committed the events: a failure is logged and the
    catch-up in `alerts.sweep_outbox` evaluates those events a few seconds later."""

    def listener(event_ids: list[int]) -> None:
        try:
            rt.dispatch("alerts.evaluate_events", {"event_ids": list(event_ids)})
        except Exception:  # noqa: BLE001 - see docstring
            log.warning("could not queue alert evaluation for events %s; the sweep will catch up",
                        event_ids, exc_info=True)

    return listener


def dispatch_deliveries(rt, notification_ids: list[int]) -> None:
    for nid in notification_ids:
        rt.dispatch("alerts.deliver", {"notification_id": nid})
