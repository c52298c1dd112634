"""The schema API: current schema, history, filtered changes and the diff between versions."""

from __future__ import annotations

import sqlite3

import pytest

from api import create_app
from monitor_app.access.api_keys import create_key
from monitor_app.schema.check import run_check
from tests.schema.conftest import add_asset, make_runtime


@pytest.fixture()
def api(store, tmp_path):
    path = tmp_path / "app.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="app-db", engine="sqlite", connection={"path": str(path)})
    run_check(rt, asset_id)                                   # version 1
    db.execute("ALTER TABLE users ADD COLUMN nick TEXT")
    run_check(rt, asset_id, {"source": "file"})               # version 2: low
    db.execute("ALTER TABLE users DROP COLUMN email")
    run_check(rt, asset_id, {"source": "file"})               # version 3: critical
    db.close()
    with store.session() as s:
        _, key = create_key(s, name="reader", role="viewer")
    client = create_app(rt).test_client()
    client.environ_base["HTTP_X_API_KEY"] = key
    return client, asset_id


def test_it_serves_the_current_schema(api):
    client, asset_id = api
    body = client.get(f"/api/v1/schema/assets/{asset_id}/current").get_json()
    assert body["version"] == 3 and body["engine"] == "sqlite"
    names = {o["name"] for o in body["snapshot"]["objects"].values()}
    assert {"main.users", "main.users.nick"} <= names and "main.users.email" not in names


def test_it_serves_the_history_newest_first(api):
    client, asset_id = api
    body = client.get(f"/api/v1/schema/assets/{asset_id}/history").get_json()
    assert [i["version"] for i in body["items"]] == [3, 2, 1]
    assert body["items"][0]["change_set"]["max_risk"] == "critical"
    assert body["items"][1]["change_set"]["context"] == {"source": "file"}
    assert body["items"][2]["change_set"] is None


def test_it_filters_changes_by_risk_object_and_time(api):
    client, asset_id = api
    everything = client.get("/api/v1/schema/changes").get_json()
    assert everything["total"] == 2
    critical = client.get("/api/v1/schema/changes?min_risk=high").get_json()["items"]
    assert [(c["action"], c["object"]) for c in critical] == [("removed", "main.users.email")]
    by_object = client.get(f"/api/v1/schema/changes?asset_id={asset_id}&object=main.users.n*").get_json()["items"]
    assert [c["object"] for c in by_object] == ["main.users.nick"]
    assert client.get("/api/v1/schema/changes?since=2999-01-01T00:00:00Z").get_json()["total"] == 0
    bad = client.get("/api/v1/schema/changes?risk=apocalyptic")
    assert bad.status_code == 400 and "risk" in bad.get_json()["errors"]


def test_it_diffs_any_two_versions(api):
    client, asset_id = api
    body = client.get(f"/api/v1/schema/assets/{asset_id}/diff?from=1&to=3").get_json()
    assert {(c["action"], c["object"]) for c in body["changes"]} == {
        ("added", "main.users.nick"), ("removed", "main.users.email")}
    back = client.get(f"/api/v1/schema/assets/{asset_id}/diff?from=3&to=1").get_json()
    assert {(c["action"], c["object"]) for c in back["changes"]} == {
        ("removed", "main.users.nick"), ("added", "main.users.email")}
    missing = client.get(f"/api/v1/schema/assets/{asset_id}/diff?from=1&to=9")
    assert missing.status_code == 404 and "version 9" in missing.get_json()["message"]


def test_it_needs_a_key_and_an_existing_asset(api):
    client, asset_id = api
    assert client.get("/api/v1/schema/changes", environ_base={"HTTP_X_API_KEY": ""}).status_code == 401
    assert client.get("/api/v1/schema/assets/999/current").status_code == 404
