"""Small builders for alerting tests: assets, events and samples written the way sources write them."""

from __future__ import annotations

from monitor_app.store.models.core import Asset, Event
from monitor_app.store.models.metrics import MetricSample


def add_asset(store, name: str, labels: dict | None = None, kind: str = "database") -> int:
    with store.session() as s:
        asset = Asset(kind=kind, engine="postgresql", name=name, source="config", external_id=name,
                      labels=labels or {}, connection={}, details={}, status="up")
        s.add(asset)
        s.flush()
        return asset.id


def add_event(store, type: str, asset_id: int | None, at, severity: str = "warning", payload: dict | None = None,
              summary: str = "") -> int:
    with store.session() as s:
        event = Event(type=type, severity=severity, asset_id=asset_id, summary=summary or type,
                      payload=payload or {}, observed_at=at, detected_at=at)
        s.add(event)
        s.flush()
        return event.id


def add_sample(store, name: str, asset_id: int | None, value: float, at, labels: dict | None = None) -> None:
    with store.session() as s:
        s.add(MetricSample(name=name, asset_id=asset_id, value=value, labels=labels or {}, at=at))


def drain(engine, ids: list[int]) -> list[dict]:
    return engine.deliver_due_now(ids)
