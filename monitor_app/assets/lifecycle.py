"""Every asset's lifecycle, whatever its source (config file, Docker, host sampler).

One set of transitions and one event vocabulary: a rule on `asset.down` or `asset.removed`
fires the same for a database declared in the config file, a container and a host. The
callers (config sync, container discovery, probes, host sampling) decide *what* happened;
this module sets the status and records the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset


@dataclass(frozen=True)
class LifecycleEvent:
    type: str
    severity: str
    sources: str
    when: str


# The vocabulary, as documented in README and docs/alerting.md.
VOCABULARY = {
    "registered": LifecycleEvent("asset.registered", "info", "config, docker, host",
                                 "first seen: declared in the config file, a database container found, "
                                 "a host's first sample"),
    "changed": LifecycleEvent("asset.changed", "info", "config, docker",
                              "a watched field changed (connection, labels, image, endpoints ...)"),
    "removed": LifecycleEvent("asset.removed", "info", "config, docker",
                              "taken out of the config file; container destroyed or no longer a database"),
    "revived": LifecycleEvent("asset.revived", "info", "config, docker",
                              "a removed asset is back under the same name (same history)"),
    "up": LifecycleEvent("asset.up", "info", "config, docker, host",
                         "reachable again (probe answers, container running, sampler reporting)"),
    "down": LifecycleEvent("asset.down", "critical", "config, docker, host",
                           "unreachable: probe fails, container crashed or OOM-killed, sampler silent"),
    "stopped": LifecycleEvent("asset.stopped", "info", "docker",
                              "a stop the engine was asked for (stop/kill, then a clean exit)"),
}
# Names recorded before the vocabulary was one; a rule naming one matches its successor.
LEGACY_TYPES = {"asset.discovered": "asset.registered", "asset.gone": "asset.removed"}
STATUSES = ("unknown", "up", "down", "stopped", "gone")


def type_names(event_type: str) -> list[str]:
    """The event's type and the older names a rule may still use for it."""
    return [event_type] + [old for old, new in LEGACY_TYPES.items() if new == event_type]


def _record(session: Session, asset: Asset, kind: str, summary: str, payload: dict | None,
            dedupe_key: str | None = None, observed_at: datetime | None = None) -> None:
    spec = VOCABULARY[kind]
    record_event(session, type=spec.type, severity=spec.severity, asset_id=asset.id, summary=summary,
                 payload={"source": asset.source, **(payload or {})}, dedupe_key=dedupe_key,
                 observed_at=observed_at)


def _set_status(session: Session, asset: Asset, status: str, now: datetime) -> str | None:
    """Move the asset from the status this session read to `status`; None when another worker
    moved it first (two probes of one asset at once must not both report the change)."""
    previous = asset.status
    moved = cast(CursorResult, session.execute(
        update(Asset).where(Asset.id == asset.id, Asset.status == previous)
        .values(status=status, status_changed_at=now).execution_options(synchronize_session=False)))
    if moved.rowcount != 1:
        # Lost the race: show callers the status the winner set, not the one this session read.
        session.refresh(asset, ["status", "status_changed_at"])
        return None
    set_committed_value(asset, "status", status)
    set_committed_value(asset, "status_changed_at", now)
    return previous


def register(session: Session, asset: Asset, summary: str, *, payload: dict | None = None,
             dedupe_key: str | None = None, status: str = "unknown", now: datetime | None = None) -> Asset:
    """Store a new asset. `next_check_at` stays empty: the next reachability sweep probes it first."""
    now = now or utcnow()
    asset.status, asset.status_changed_at, asset.next_check_at = status, now, None
    session.add(asset)
    session.flush()
    _record(session, asset, "registered", summary, payload, dedupe_key)
    return asset


def change(session: Session, asset: Asset, changed: list[str], summary: str, *,
           before: dict | None = None, after: dict | None = None) -> None:
    _record(session, asset, "changed", summary,
            {"changed": changed, "before": before or {}, "after": after or {}})


def remove(session: Session, asset: Asset, summary: str, *, payload: dict | None = None,
           now: datetime | None = None) -> bool:
    """Out of monitoring on purpose: never a `down`. False when it already was removed."""
    if asset.status == "gone":
        return False
    now = now or utcnow()
    previous = _set_status(session, asset, "gone", now)
    if previous is None:
        return False
    asset.gone_at = now
    _record(session, asset, "removed", summary, {"previous": previous, **(payload or {})})
    return True


def revive(session: Session, asset: Asset, summary: str, *, payload: dict | None = None,
           dedupe_key: str | None = None, now: datetime | None = None) -> None:
    now = now or utcnow()
    if _set_status(session, asset, "unknown", now) is None:
        return
    asset.gone_at, asset.next_check_at = None, None
    _record(session, asset, "revived", summary, payload, dedupe_key)


def observe(session: Session, asset: Asset, up: bool, summary: str, *, payload: dict | None = None,
            now: datetime | None = None) -> str | None:
    """A probe or a sample says up or down; an event only on a change of status. A stopped
    asset failing its probe is what a planned stop looks like, so it stays stopped silently.
    Returns the new status when it changed."""
    status = "up" if up else "down"
    if asset.status == status or (asset.status == "stopped" and not up) or asset.status == "gone":
        return None
    previous = _set_status(session, asset, status, now or utcnow())
    if previous is None:
        return None
    _record(session, asset, status, summary, {"previous": previous, **(payload or {})})
    return status


def stop(session: Session, asset: Asset, summary: str, *, payload: dict | None = None,
         dedupe_key: str | None = None, observed_at: datetime | None = None, now: datetime | None = None) -> bool:
    """Stopped on request: informational, and later failing probes stay quiet."""
    return _known_exit(session, asset, "stopped", summary, payload, dedupe_key, observed_at, now)


def fail(session: Session, asset: Asset, summary: str, *, payload: dict | None = None,
         dedupe_key: str | None = None, observed_at: datetime | None = None, now: datetime | None = None) -> bool:
    """Down for a known reason (a crash, an OOM kill, a silent sampler), before any probe says so."""
    return _known_exit(session, asset, "down", summary, payload, dedupe_key, observed_at, now)


def _known_exit(session: Session, asset: Asset, status: str, summary: str, payload: dict | None,
                dedupe_key: str | None, observed_at: datetime | None, now: datetime | None) -> bool:
    if asset.status in (status, "gone"):
        return False
    previous = _set_status(session, asset, status, now or utcnow())
    if previous is None:
        return False
    _record(session, asset, status, summary, {"previous": previous, **(payload or {})}, dedupe_key, observed_at)
    return True
