"""What happened to an asset, newest first: its schema change sets, file changes and backups, and
its container and lifecycle events.

Each list is bounded (a 500-statement migration is one change set of hundreds of changes; a chatty
log directory makes thousands of file changes), and says how much it left out. Everything in these
rows came from the monitored system, so every text goes through `shown` (bounded, encodable); the
template escapes it. Rows become plain dicts through the views the API uses where there are some
(`files.views`, `schema.diff.summary_line`), so the page and the API say the same thing.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from monitor_app.files.views import backup_dict, change_dict, watch_dict
from monitor_app.platform.vocabulary import RISKS
from monitor_app.schema.diff import summary_line
from monitor_app.status.shown_text import shown, shown_list
from monitor_app.store.models import Event
from monitor_app.store.models.files import FileBackup, FileChange, FileWatch
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet

CHANGE_SETS = 10
CHANGES_PER_SET = 50
ATTRIBUTES_PER_CHANGE = 12
FILE_CHANGES = 20
CONFIG_LINES = 10
BACKUPS = 20
LIFECYCLE_EVENTS = 40
LIFECYCLE_TYPES = ("container.%", "asset.%")
SIGNS = {"added": "+", "removed": "−", "modified": "~"}


def risk_class(risk: object) -> str:
    """A CSS-safe risk name: only the vocabulary's, anything else is `unknown`."""
    return risk if isinstance(risk, str) and risk in RISKS else "unknown"


def _value(value: object) -> str:
    return "none" if value is None else shown(value, 300)


def _attributes(detail: dict) -> tuple[list[dict], int]:
    """Each attribute the change touched, before and after; and how many more there were."""
    before, after = detail.get("before"), detail.get("after")
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    names = sorted(set(before) | set(after), key=str)
    return [{"name": shown(n, 80), "before": _value(before[n]) if n in before else None,
             "after": _value(after[n]) if n in after else None} for n in names[:ATTRIBUTES_PER_CHANGE]], \
        max(0, len(names) - ATTRIBUTES_PER_CHANGE)


def _change(c) -> dict:
    """One change (a row with SchemaChange's columns) as shown: sign, object, risk, why, attributes."""
    detail = c.detail if isinstance(c.detail, dict) else {}
    record = {"action": c.action, "object_type": c.object_type, "object": c.object, "risk": c.risk,
              "renamed_from": c.renamed_from, "detail": detail}
    try:
        line = summary_line(record)
    except (KeyError, TypeError, AttributeError):
        line = f"{c.action} {c.object_type} {c.object}"
    attributes, more_attributes = _attributes(detail)
    return {"action": shown(c.action, 16), "sign": SIGNS.get(c.action, "?"), "object_type": shown(c.object_type, 40),
            "object": shown(c.object, 300), "renamed_from": shown(c.renamed_from, 300) if c.renamed_from else None,
            "risk": risk_class(c.risk), "why": shown(detail.get("why"), 400), "attributes": attributes,
            "more_attributes": more_attributes, "line": shown(line, 500)}


def _context(context: object) -> dict:
    ctx = context if isinstance(context, dict) else {}
    found = ctx.get("attribution")
    attribution: dict = found if isinstance(found, dict) else {}
    ended = attribution.get("ended_sessions")
    return {"source": shown(ctx.get("source") or "unknown", 40), "who": shown_list(ctx.get("users")),
            "applications": shown_list(ctx.get("application_names")), "commands": shown_list(ctx.get("command_tags")),
            "first_at": shown(ctx.get("first_at"), 40), "last_at": shown(ctx.get("last_at"), 40),
            "trailing": bool(ctx.get("trailing")), "reconnected": bool(ctx.get("reconnected")),
            # Senders whose session had ended before the server could name them.
            "ended_sessions": ended if isinstance(ended, int) and not isinstance(ended, bool) and ended > 0 else 0}


def schema_timeline(session: Session, asset_id: int) -> dict:
    """The latest change sets, each with its first changes (riskiest shown first) and who made them.

    Two queries whatever the number of sets: the changes are numbered within their set by a window
    function (SQLite and PostgreSQL both have one) and cut at CHANGES_PER_SET there."""
    total = session.scalar(select(func.count()).where(SchemaChangeSet.asset_id == asset_id)) or 0
    sets = session.scalars(select(SchemaChangeSet).where(SchemaChangeSet.asset_id == asset_id)
                           .order_by(SchemaChangeSet.detected_at.desc(), SchemaChangeSet.id.desc())
                           .limit(CHANGE_SETS)).all()
    position = func.row_number().over(partition_by=SchemaChange.change_set_id, order_by=SchemaChange.id).label("n")
    numbered = select(SchemaChange.change_set_id, SchemaChange.action, SchemaChange.object_type, SchemaChange.object,
                      SchemaChange.risk, SchemaChange.renamed_from, SchemaChange.detail, position) \
        .where(SchemaChange.change_set_id.in_([cs.id for cs in sets])).subquery()
    by_set: dict[int, list[dict]] = {}
    for row in session.execute(select(numbered).where(numbered.c.n <= CHANGES_PER_SET)
                               .order_by(numbered.c.change_set_id, numbered.c.n)) if sets else ():
        by_set.setdefault(row.change_set_id, []).append(_change(row))
    items = []
    for cs in sets:
        changes = sorted(by_set.get(cs.id, []), key=lambda c: -RISKS.index(c["risk"]) if c["risk"] in RISKS else 1)
        items.append({"id": cs.id, "detected_at": cs.detected_at, "from_version": cs.from_version,
                      "to_version": cs.to_version, "max_risk": risk_class(cs.max_risk), "change_count": cs.change_count,
                      "context": _context(cs.context), "changes": changes,
                      "more": max(0, cs.change_count - len(changes))})
    return {"change_sets": items, "total": total}


def _config_lines(diff: object) -> list[dict]:
    if not isinstance(diff, list):
        return []
    lines = []
    for entry in diff[:CONFIG_LINES]:
        e = entry if isinstance(entry, dict) else {}
        lines.append({"name": shown(e.get("parameter") or e.get("rule") or "?", 120), "change": shown(e.get("change"), 20),
                      "old": shown(e.get("old"), 200), "new": shown(e.get("new"), 200),
                      "risk": risk_class(e.get("risk")), "reason": shown(e.get("reason"), 200),
                      "restart": e.get("restart_required") is True})
    return lines


def file_activity(session: Session, asset_id: int) -> dict:
    """The asset's watches, their latest changes (config diffs summarised) and latest backups."""
    watches = session.scalars(select(FileWatch).where(FileWatch.asset_id == asset_id, FileWatch.status != "removed")
                              .order_by(FileWatch.path)).all()
    changes = session.scalars(select(FileChange).where(FileChange.asset_id == asset_id)
                              .order_by(FileChange.observed_at.desc(), FileChange.id.desc()).limit(FILE_CHANGES)).all()
    backups = session.scalars(select(FileBackup).join(FileWatch, FileWatch.id == FileBackup.watch_id)
                              .where(FileWatch.asset_id == asset_id)
                              .order_by(FileBackup.first_seen_at.desc(), FileBackup.id.desc()).limit(BACKUPS)).all()
    shown_changes = []
    for c in changes:
        d = change_dict(c)
        shown_changes.append({"observed_at": c.observed_at, "type": shown(d["type"], 40),
                              "severity": shown(d["severity"], 16), "path": shown(d["path"], 400),
                              "dest": shown(d.get("dest"), 400), "fields": shown_list(d["fields"], 8, 40),
                              "reason": shown(d["reason"], 20), "config": _config_lines(d.get("diff")),
                              "config_more": max(0, len(d["diff"]) - CONFIG_LINES) if isinstance(d.get("diff"), list)
                              else 0})
    shown_backups = []
    for b in backups:
        d = backup_dict(b)
        shown_backups.append({"path": shown(d["path"], 400), "state": shown(d["state"], 16), "size": d["size"],
                              "format": shown(d["format"], 32), "detail": shown(d["detail"], 300),
                              "first_seen_at": b.first_seen_at, "completed_at": b.completed_at})
    shown_watches = [{"path": shown(w["path"], 400), "kinds": shown_list(w["kinds"], 6, 20),
                      "status": shown(w["status"], 16), "status_detail": shown(w["status_detail"], 300),
                      "entries": w["entries"], "total_bytes": w["total_bytes"]}
                     for w in (watch_dict(x) for x in watches)]
    return {"watches": shown_watches, "changes": shown_changes, "backups": shown_backups}


def lifecycle_events(session: Session, asset_id: int) -> list[dict]:
    """`container.*` and `asset.*` events of the asset, newest first."""
    rows = session.scalars(select(Event).where(Event.asset_id == asset_id,
                                               or_(*(Event.type.like(t) for t in LIFECYCLE_TYPES)))
                           .order_by(Event.detected_at.desc(), Event.id.desc()).limit(LIFECYCLE_EVENTS)).all()
    return [{"type": shown(e.type, 64), "severity": shown(e.severity, 16), "summary": shown(e.summary, 400),
             "detected_at": e.detected_at, "observed_at": e.observed_at} for e in rows]
