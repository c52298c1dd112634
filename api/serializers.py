"""Plain dicts out of store rows. Asset.secret is deliberately never read here, and label values
on the deny-list (`DBMON_LABEL_DENYLIST`) are redacted wherever labels appear."""

from __future__ import annotations


from api.context import runtime
from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.store.base import iso


def redact(value):
    return LabelRedactor(runtime().settings.label_deny_patterns).within(value)


def asset_dict(a) -> dict:
    return redact({
        "id": a.id, "kind": a.kind, "engine": a.engine, "name": a.name, "source": a.source,
        "external_id": a.external_id, "labels": a.labels, "connection": a.connection,
        "details": a.details, "status": a.status, "status_changed_at": iso(a.status_changed_at),
        "last_checked_at": iso(a.last_checked_at), "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at), "gone_at": iso(a.gone_at),
    })


def event_dict(e) -> dict:
    return redact({
        "id": e.id, "type": e.type, "severity": e.severity, "asset_id": e.asset_id,
        "summary": e.summary, "payload": e.payload, "observed_at": iso(e.observed_at),
        "detected_at": iso(e.detected_at),
    })


def run_dict(r) -> dict:
    return {
        "id": r.id, "task": r.name, "kind": r.kind, "kwargs": r.kwargs, "queue": r.queue,
        "status": r.status, "attempts": r.attempts, "requested_by": r.requested_by,
        "requested_at": iso(r.requested_at), "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at), "result": r.result, "error": r.error,
    }
