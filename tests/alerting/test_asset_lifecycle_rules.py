"""Rules on the asset lifecycle vocabulary, fed by the real config sync: one rule for every source,
and rules written for the older type names keep firing."""

from __future__ import annotations

from sqlalchemy import select

from monitor_app.assets.config_assets import sync_config_assets
from monitor_app.config.declarative import parse_config
from monitor_app.access.credential_box import CredentialBox
from monitor_app.store.models import Event
from monitor_app.store.models.alerting import Alert

BOX = CredentialBox("unit-test-key")
CACHE = {"name": "cache", "engine": "sqlite", "path": "/srv/cache.db"}


def _sync(store, *assets) -> list[int]:
    with store.session() as s:
        before = s.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
        sync_config_assets(s, parse_config({"assets": list(assets)}), BOX)
        return list(s.scalars(select(Event.id).where(Event.id > before).order_by(Event.id)))


def _firing(store) -> set[str]:
    with store.session() as s:
        return {a.labels["alertname"] for a in s.scalars(select(Alert)) if a.state == "firing"}


def test_a_rule_on_an_old_type_name_matches_its_new_name_and_a_removal_pages_nobody(store, make_engine):
    engine = make_engine({"rules": [
        {"name": "AssetGone", "kind": "event", "event_types": ["asset.gone"]},
        {"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]},
        {"name": "ConfigRemoval", "kind": "event", "event_types": ["asset.removed"],
         "payload_match": {"source": "config"}},
    ]})
    engine.evaluate_events(_sync(store, CACHE))
    assert _firing(store) == set()
    engine.evaluate_events(_sync(store))  # taken out of the file: asset.removed
    assert _firing(store) == {"AssetGone", "ConfigRemoval"}
