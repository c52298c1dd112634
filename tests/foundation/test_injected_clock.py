"""Core entry points take the time as an argument: a check run "at" a given instant is stamped with it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from monitor_app.assets.reachability import ProbeResult, apply_probe
from monitor_app.platform import spread
from monitor_app.store.models import Asset
from tests.alerting.helpers import add_asset


def test_a_probe_applied_at_a_given_instant_is_stamped_and_scheduled_from_it(sqlite_store):
    asset_id = add_asset(sqlite_store, "clocked")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with sqlite_store.session() as s:
        asset = s.get(Asset, asset_id)
        apply_probe(s, asset, ProbeResult(True, 1.5), 60, now=at)
    with sqlite_store.session() as s:
        asset = s.get(Asset, asset_id)
        assert asset.last_checked_at == at
        assert asset.next_check_at == spread.next_slot(asset_id, 60, at)
        assert at < asset.next_check_at <= at + timedelta(seconds=60)
        assert asset.details["probe"]["at"] == at.isoformat()


def test_a_schema_check_run_at_an_instant_is_due_again_at_its_next_slot(sqlite_store, tmp_path):
    import sqlite3

    from monitor_app.schema.check import due_assets, run_check
    from tests.schema.conftest import add_asset as add_database
    from tests.schema.conftest import make_runtime

    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"check_interval": 300}})
    path = tmp_path / "app.db"
    sqlite3.connect(path).execute("CREATE TABLE t (id INTEGER)").connection.close()
    asset_id = add_database(sqlite_store, name="lite", engine="sqlite", connection={"path": str(path)})
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    run_check(rt, asset_id, now=at)
    slot = spread.next_slot(asset_id, 300, at)
    assert asset_id not in due_assets(rt, now=slot - timedelta(seconds=1))
    assert asset_id in due_assets(rt, now=slot)
    assert slot <= at + timedelta(seconds=300)
