"""From file changes to events: which changes are news for a watch, how serious each is, and how a
burst is folded so a 50,000-file copy is a handful of events, not 50,000 pages.

Every change is stored (file_changes); only those the watch's `events` list asks for become
events, and more than `FOLD_ABOVE` of one type in one scan become one event with a count.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from monitor_app.files.compare import Change
from monitor_app.platform.vocabulary import RISKS

FOLD_ABOVE = 20
SAMPLE_PATHS = 20
_EVENT_OPTION = {"created": "created", "modified": "modified", "deleted": "deleted", "moved": "moved",
                 "permissions_changed": "permissions", "config_changed": "modified"}
_RISK_SEVERITY = {"low": "info", "medium": "info", "high": "warning", "critical": "critical"}
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


@dataclass
class JudgedChange:
    change: Change
    type: str  # created | modified | deleted | moved | permissions_changed | config_changed
    severity: str
    summary: str
    diff: list | None = None
    extra: dict = field(default_factory=dict)


def permissions_severity(change: Change, kinds: list[str]) -> tuple[str, str]:
    old, new = change.old, change.new
    assert old is not None and new is not None
    text = f"mode {old.mode:04o} -> {new.mode:04o}" if old.mode != new.mode else ""
    if old.uid != new.uid or old.gid != new.gid:
        text = ", ".join(filter(None, [text, f"owner {old.uid}:{old.gid} -> {new.uid}:{new.gid}"]))
    opened = (new.mode & _OPEN_TO_OTHERS) & ~(old.mode & _OPEN_TO_OTHERS)
    sensitive = any(k in ("data", "wal", "config", "backup") for k in kinds)
    # PostgreSQL refuses to start on a data directory open to others; a backup or config open to
    # others leaks the database. Either is a hole now, not a curiosity.
    if sensitive and opened and (new.type == "dir" or new.mode & (stat.S_IRGRP | stat.S_IROTH)) and (
            new.mode & stat.S_IROTH or "data" in kinds or "wal" in kinds):
        return "critical", text
    if new.mode & stat.S_IWOTH and not old.mode & stat.S_IWOTH:
        return "critical", text
    return "warning", text


def diff_severity(diff: list) -> str:
    risks = [d.get("risk") for d in diff if d.get("risk") in RISKS]
    if not risks:
        return "info"
    return _RISK_SEVERITY[max(risks, key=RISKS.index)]


def judge(change: Change, kinds: list[str], diff: list | None) -> JudgedChange:
    if change.type == "permissions_changed":
        severity, text = permissions_severity(change, kinds)
        return JudgedChange(change, change.type, severity, f"{change.path}: {text}")
    if diff is not None and change.type in ("modified", "created"):
        names = ", ".join(str(d.get("parameter") or d.get("rule")) for d in diff[:5])
        more = f" and {len(diff) - 5} more" if len(diff) > 5 else ""
        return JudgedChange(change, "config_changed", diff_severity(diff),
                            f"{change.path}: {len(diff)} setting(s) changed: {names}{more}", diff=diff)
    if change.type == "moved":
        return JudgedChange(change, "moved", "info", f"{change.path} moved to {change.dest}")
    severity = "warning" if change.type == "deleted" and ("config" in kinds or "backup" in kinds) else "info"
    return JudgedChange(change, change.type, severity, f"{change.path} {change.type}")


def wanted(judged: JudgedChange, events: list[str]) -> bool:
    if judged.type == "config_changed":
        return bool(judged.diff)  # a comment or an equivalent spelling is not news
    return _EVENT_OPTION[judged.type] in events


def event_records(judged: list[JudgedChange], watch_path: str, watch_id: int) -> list[dict]:
    """{type, severity, summary, payload} per event to record, bursts folded per type."""
    by_type: dict[str, list[JudgedChange]] = {}
    for j in judged:
        by_type.setdefault(j.type, []).append(j)
    out = []
    for kind, items in by_type.items():
        if len(items) <= FOLD_ABOVE:
            for j in items:
                payload = {"watch_id": watch_id, "watch": watch_path, **j.change.as_dict(), **j.extra}
                if j.diff is not None:
                    payload["diff"] = j.diff
                out.append({"type": f"file.{kind}", "severity": j.severity, "summary": j.summary, "payload": payload})
            continue
        worst = max((j.severity for j in items), key=["info", "warning", "critical", "page"].index)
        out.append({"type": f"file.{kind}", "severity": worst,
                    "summary": f"{len(items)} paths {kind.replace('_', ' ')} under {watch_path}",
                    "payload": {"watch_id": watch_id, "watch": watch_path, "count": len(items), "folded": True,
                                "paths": [j.change.path for j in items[:SAMPLE_PATHS]]}})
    return out
