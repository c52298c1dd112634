"""The reachability check as a task runs it: which assets are due, and one asset's check.

The probe runs outside any store transaction: a slow target must not hold a store connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from monitor_app.assets.certificates import DEFAULT_TLS_WARN_DAYS
from monitor_app.assets.config_assets import password_for
from monitor_app.assets.reachability import apply_probe, can_probe, probe
from monitor_app.config.last_good import ConfigUnavailable
from monitor_app.errors import NotFound
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset

PROBED_ENGINES = ("postgresql", "sqlite", "mysql", "mariadb")


@dataclass(frozen=True)
class _Target:
    """What a probe needs, copied out of the session so the probe runs without one."""
    engine: str
    connection: dict
    name: str


def due_assets(session: Session, now: datetime) -> list[int]:
    return [a.id for a in session.scalars(select(Asset).where(
        Asset.engine.in_(PROBED_ENGINES), Asset.status != "gone",
        or_(Asset.next_check_at.is_(None), Asset.next_check_at <= now)).order_by(Asset.id)) if can_probe(a)]


def run_check(rt, asset_id: int, *, now: datetime | None = None) -> dict:
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None or asset.status == "gone":
            raise NotFound(f"asset {asset_id} does not exist or is gone")
        if not can_probe(asset):
            return {"asset_id": asset_id, "skipped": "no credentials to log in; probed by its port instead"}
        password = password_for(asset, rt.credentials)
        target = _Target(asset.engine, dict(asset.connection), asset.name)
    result = probe(target, password, rt.settings.probe_timeout, rt.connection_budget,  # type: ignore[arg-type]
                   rt.recent_logins)
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        changed = apply_probe(s, asset, result, rt.settings.reachability_interval, now=now or utcnow(),
                              tls_warn_days=_tls_warn_days(rt))
        status = asset.status
    return {"asset_id": asset_id, "status": status, "changed": changed is not None,
            "latency_ms": round(result.latency_ms, 2), "error": result.error}


def _tls_warn_days(rt) -> tuple[int, ...]:
    """The container section's thresholds apply to certificates a login reads too."""
    try:
        return tuple(rt.config.containers.tls_warn_days)
    except ConfigUnavailable:
        return DEFAULT_TLS_WARN_DAYS
