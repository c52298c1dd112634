"""Alerting's beat entries: the sweep (due notifications, retries, escalation steps,
expired silences, catch-up of missed events) and threshold-rule evaluation."""

from __future__ import annotations


def entries(settings) -> dict:
    sweep, metrics = settings.alert_sweep_interval, settings.alert_metrics_interval
    return {
        "alerts-sweep": {"task": "alerts.sweep_outbox", "schedule": sweep,
                         "options": {"queue": "alerts", "expires": max(sweep * 5, 10.0)}},
        "alerts-evaluate-metrics": {"task": "alerts.evaluate_metrics", "schedule": metrics,
                                    "options": {"queue": "alerts", "expires": metrics}},
    }
