"""Posture rows as plain JSON-able dicts, for the API and the CLI."""

from __future__ import annotations

from monitor_app.store.base import iso
from monitor_app.store.models import PostureFinding

FINDING_SEVERITIES = ("warning", "critical")


def finding_dict(f: PostureFinding) -> dict:
    return {"id": f.finding, "asset_id": f.asset_id, "severity": f.severity, "title": f.title,
            "detail": f.detail, "remediation": f.remediation, "opened_at": iso(f.opened_at),
            "last_seen_at": iso(f.last_seen_at)}
