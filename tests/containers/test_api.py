"""The containers API on a real store filled by a real reconcile."""

from __future__ import annotations

import pytest

from api import create_app
from monitor_app.access.api_keys import create_key
from monitor_app.containers.discovery import handle_event, reconcile
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings

pytestmark = pytest.mark.docker


@pytest.fixture()
def api(tmp_path, store, runner, containers_config):
    settings = load_settings(data_dir=tmp_path, database_url=store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    with store.session() as s:
        _, key = create_key(s, name="viewer", role="viewer")
    client = create_app(rt).test_client()
    client.environ_base["HTTP_X_API_KEY"] = key
    return client


def test_it_lists_the_inventory_with_reasons_and_each_assets_containers_and_events(api, store, runner,
                                                                                     containers_config):
    pg = runner.run("dbmct/postgres:16", "pg", env={"POSTGRES_PASSWORD": "secret-value"})
    runner.run("dbmct/adminer:4", "adminer")
    with store.session() as s:
        reconcile(s, runner.client, containers_config)
        handle_event(s, runner.client, {"container_id": pg, "action": "kill", "time_nano": 1,
                                        "attributes": {"signal": "15"}}, containers_config)

    dbs = api.get("/api/v1/containers?database=true&per_page=500").get_json()["items"]
    mine = [c for c in dbs if c["name"] == runner.name("pg")]
    assert len(mine) == 1 and mine[0]["engine"] == "postgresql" and mine[0]["ports"] == [5432]
    others = api.get("/api/v1/containers?database=false&per_page=500").get_json()["items"]
    adminer = next(c for c in others if c["name"] == runner.name("adminer"))
    assert any("tool" in r for r in adminer["reasons"])

    one = api.get(f"/api/v1/containers/{pg[:12]}").get_json()
    assert one["record"]["env_names"] == ["POSTGRES_PASSWORD"]
    assert "secret-value" not in api.get(f"/api/v1/containers/{pg}").get_data(as_text=True)
    assert api.get("/api/v1/containers/abc").status_code == 400
    assert api.get("/api/v1/containers/ffffffffffff").status_code == 404

    asset_id = mine[0]["asset_id"]
    by_asset = api.get(f"/api/v1/containers/assets/{asset_id}").get_json()
    assert by_asset["asset"]["engine"] == "postgresql" and "secret" not in by_asset["asset"]
    assert [c["container_id"] for c in by_asset["containers"]] == [pg]
    events = api.get(f"/api/v1/containers/assets/{asset_id}/events").get_json()
    assert {e["type"] for e in events["items"]} == {"asset.registered", "container.kill"}
    only = api.get(f"/api/v1/containers/assets/{asset_id}/events?type=container.*").get_json()
    assert [e["type"] for e in only["items"]] == ["container.kill"]
    assert api.get("/api/v1/containers/assets/999999/events").status_code == 404


def test_it_needs_an_api_key(api):
    api.environ_base.pop("HTTP_X_API_KEY")
    assert api.get("/api/v1/containers").status_code == 401
