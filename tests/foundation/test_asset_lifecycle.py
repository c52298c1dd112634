"""One lifecycle for every asset source, on both store backends: config assets leave as `removed`
(never `down`), come back as `revived`, change as `changed`; a host whose sampler goes silent is
`down`; two workers seeing the same change record it once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from monitor_app.assets import lifecycle
from monitor_app.assets.config_assets import sync_config_assets
from monitor_app.config.declarative import parse_config
from monitor_app.access.credential_box import CredentialBox
from monitor_app.metrics.host_liveness import sampler_reported, silent_samplers
from monitor_app.assets.reachability import ProbeResult, apply_probe
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, Event

BOX = CredentialBox("unit-test-key")


def _events(store, name: str) -> list[Event]:
    with store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == name))
        return list(s.scalars(select(Event).where(Event.asset_id == asset_id).order_by(Event.id)))


def _config(*assets: dict):
    return parse_config({"assets": list(assets)})


ORDERS = {"name": "orders", "engine": "postgresql", "host": "db1", "database": "orders", "user": "mon",
          "password_env": "ORDERS_PW"}
CACHE = {"name": "cache", "engine": "sqlite", "path": "/srv/cache.db"}


def test_a_config_asset_taken_out_of_the_file_is_removed_not_down_and_revived_when_back(store):
    with store.session() as s:
        sync_config_assets(s, _config(CACHE), BOX)
    with store.session() as s:
        cache = s.scalar(select(Asset).where(Asset.name == "cache"))
        apply_probe(s, cache, ProbeResult(True, 1.0), 30)
    with store.session() as s:
        assert sync_config_assets(s, _config(), BOX).removed == ["cache"]
    with store.session() as s:
        assert sync_config_assets(s, _config(), BOX).removed == []  # once
        cache = s.scalar(select(Asset).where(Asset.name == "cache"))
        assert cache.status == "gone" and cache.gone_at is not None
        # A probe that was already queued cannot turn a removed asset into an outage.
        assert apply_probe(s, cache, ProbeResult(False, 1.0, "gone"), 30) is None
    with store.session() as s:
        assert sync_config_assets(s, _config(CACHE), BOX).updated == ["cache"]
    events = _events(store, "cache")
    assert [(e.type, e.severity) for e in events] == [
        ("asset.registered", "info"), ("asset.up", "info"), ("asset.removed", "info"), ("asset.revived", "info")]
    assert all(e.payload["source"] == "config" for e in events)
    assert events[2].payload["previous"] == "up"
    with store.session() as s:
        cache = s.scalar(select(Asset).where(Asset.name == "cache"))
        assert cache.status == "unknown" and cache.next_check_at is None  # due for a probe at once


def test_a_changed_config_asset_says_what_changed_and_never_the_password(store, monkeypatch):
    monkeypatch.setenv("ORDERS_PW", "first-secret")
    with store.session() as s:
        sync_config_assets(s, _config(ORDERS), BOX)
    with store.session() as s:
        assert sync_config_assets(s, _config(ORDERS), BOX).updated == []  # a fresh seal is no change
    monkeypatch.setenv("ORDERS_PW", "second-secret")
    with store.session() as s:
        result = sync_config_assets(s, _config({**ORDERS, "host": "db2"}), BOX)
    assert result.updated == ["orders"]
    changed = [e for e in _events(store, "orders") if e.type == "asset.changed"]
    assert len(changed) == 1 and changed[0].payload["changed"] == ["connection", "password"]
    assert changed[0].payload["before"]["connection"]["host"] == "db1"
    assert changed[0].payload["after"]["connection"]["host"] == "db2"
    assert "secret" not in repr(changed[0].payload) and "secret" not in changed[0].summary


def test_a_host_is_down_when_its_sampler_misses_n_intervals_and_up_when_it_reports(store):
    t0 = utcnow()
    with store.session() as s:
        sampler_reported(s, "db-host-1", t0)
    with store.session() as s:
        assert silent_samplers(s, t0 + timedelta(seconds=89), interval=30, missed=3) == []
    with store.session() as s:
        assert silent_samplers(s, t0 + timedelta(seconds=91), interval=30, missed=3) == ["db-host-1"]
    with store.session() as s:
        assert silent_samplers(s, t0 + timedelta(seconds=200), interval=30, missed=3) == []  # once
    with store.session() as s:
        sampler_reported(s, "db-host-1", t0 + timedelta(seconds=210))
        sampler_reported(s, "db-host-1", t0 + timedelta(seconds=240))
    events = _events(store, "db-host-1")
    assert [(e.type, e.severity) for e in events] == [
        ("asset.registered", "info"), ("asset.up", "info"), ("asset.down", "critical"), ("asset.up", "info")]
    assert events[2].payload == {**events[2].payload, "source": "host", "missed_intervals": 3, "previous": "up"}


def test_two_workers_seeing_the_same_change_record_it_once(store):
    with store.session() as s:
        asset_id = lifecycle.register(s, Asset(kind="database", engine="sqlite", name="twice", source="config",
                                               external_id="twice", labels={}, connection={}, details={}),
                                      "registered").id
    first, second = store.session(), store.session()
    with first as a, second as b:
        mine, theirs = a.get(Asset, asset_id), b.get(Asset, asset_id)
        assert mine.status == theirs.status == "unknown"
        assert lifecycle.observe(a, mine, False, "refused") == "down"
        a.commit()
        # The other worker read "unknown" before the first one's change: it must not report it again.
        assert lifecycle.observe(b, theirs, False, "refused") is None
    assert [e.type for e in _events(store, "twice")] == ["asset.registered", "asset.down"]
