"""Storing checks: a new snapshot version and change set only when something changed,
one `schema.changed` event per change set, and reading the history back."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.errors import NotFound
from monitor_app.platform.event_log import record_event
from monitor_app.schema.diff import diff, summary_line
from monitor_app.schema.risk import max_risk
from monitor_app.schema.snapshot_format import content_hash
from monitor_app.store.base import utcnow
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet, SchemaSnapshot

# Event severity for the riskiest change in a set: a dropped table at 3 a.m. pages someone.
SEVERITY_FOR_RISK = {"low": "info", "medium": "warning", "high": "critical", "critical": "page"}
EVENT_CHANGES_KEPT = 50


@dataclass
class CheckOutcome:
    version: int
    baseline: bool = False
    changed: bool = False
    change_set_id: int | None = None
    max_risk: str | None = None
    changes: list[dict] = field(default_factory=list)
    event_id: int | None = None

    def as_dict(self) -> dict:
        return {"version": self.version, "baseline": self.baseline, "changed": self.changed,
                "change_set_id": self.change_set_id, "max_risk": self.max_risk,
                "change_count": len(self.changes), "event_id": self.event_id}


def latest_snapshot(session: Session, asset_id: int) -> SchemaSnapshot | None:
    return session.scalar(select(SchemaSnapshot).where(SchemaSnapshot.asset_id == asset_id)
                          .order_by(SchemaSnapshot.version.desc()).limit(1))


def snapshot_version(session: Session, asset_id: int, version: int) -> SchemaSnapshot:
    row = session.scalar(select(SchemaSnapshot).where(SchemaSnapshot.asset_id == asset_id,
                                                      SchemaSnapshot.version == version))
    if row is None:
        raise NotFound(f"asset {asset_id} has no schema version {version}", field="version")
    return row


def _store_snapshot(session: Session, asset_id: int, version: int, snapshot: dict, digest: str) -> SchemaSnapshot:
    row = SchemaSnapshot(asset_id=asset_id, version=version, engine=snapshot["engine"], content_hash=digest,
                         object_count=len(snapshot["objects"]), document=snapshot, taken_at=utcnow())
    session.add(row)
    session.flush()  # a concurrent check that got here first fails on (asset_id, version) now
    return row


def record_check(session: Session, asset_id: int, asset_name: str, snapshot: dict,
                 context: dict | None = None) -> CheckOutcome:
    """Compare with the latest stored version; store and report only a net change."""
    digest = content_hash(snapshot)
    previous = latest_snapshot(session, asset_id)
    if previous is None:
        _store_snapshot(session, asset_id, 1, snapshot, digest)
        return CheckOutcome(version=1, baseline=True)
    if previous.content_hash == digest:
        return CheckOutcome(version=previous.version)
    changes = diff(previous.document, snapshot)
    if not changes:
        # Different identities, same content (an index rebuilt CONCURRENTLY): nothing to report,
        # but keep the newer document so the next diff matches identities directly.
        previous.document, previous.content_hash = snapshot, digest
        return CheckOutcome(version=previous.version)

    version = previous.version + 1
    _store_snapshot(session, asset_id, version, snapshot, digest)
    now = utcnow()
    worst = max_risk(c["risk"] for c in changes)
    change_set = SchemaChangeSet(asset_id=asset_id, from_version=previous.version, to_version=version,
                                 detected_at=now, max_risk=worst, change_count=len(changes),
                                 context=context or {})
    session.add(change_set)
    session.flush()
    session.add_all(SchemaChange(change_set_id=change_set.id, asset_id=asset_id, detected_at=now,
                                 action=c["action"], object_type=c["object_type"], object=c["object"][:1024],
                                 risk=c["risk"], renamed_from=c["renamed_from"], detail=c["detail"])
                    for c in changes)
    event = record_event(
        session, type="schema.changed", severity=SEVERITY_FOR_RISK[worst], asset_id=asset_id,
        summary=_summary(asset_name, changes, worst),
        payload={"change_set_id": change_set.id, "from_version": previous.version, "to_version": version,
                 "max_risk": worst, "change_count": len(changes), "context": context or {},
                 "changes": [event_item(c) for c in changes[:EVENT_CHANGES_KEPT]]},
        dedupe_key=f"schema.changed:{asset_id}:{version}")
    return CheckOutcome(version=version, changed=True, change_set_id=change_set.id, max_risk=worst,
                        changes=changes, event_id=event.id if event else None)


def event_item(change: dict) -> dict:
    """A change as the `schema.changed` event carries it: enough for an alert rule to fan out
    over (`for_each: changes`, labels such as `object`), without the full before/after detail."""
    return {"action": change["action"], "object_type": change["object_type"], "object": change["object"],
            "risk": change["risk"], "renamed_from": change.get("renamed_from"), "line": summary_line(change)}


def _summary(asset_name: str, changes: list[dict], worst: str) -> str:
    first = changes[0]
    name = first["object"] if not first.get("renamed_from") else f"{first['renamed_from']} -> {first['object']}"
    more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
    return f"{asset_name}: {first['object_type']} {name} {first['action']}{more} (max risk {worst})"


def diff_versions(session: Session, asset_id: int, from_version: int, to_version: int) -> list[dict]:
    old = snapshot_version(session, asset_id, from_version)
    new = snapshot_version(session, asset_id, to_version)
    return diff(old.document, new.document)
