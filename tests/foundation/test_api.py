"""The REST API against a real store: roles, validation, audit, secrecy."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor_app.access.api_keys import create_key
from monitor_app.assets.config_assets import sync_config_assets
from monitor_app.config.declarative import parse_config
from monitor_app.platform.event_log import record_event
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import AuditEntry, TaskRun


@pytest.fixture()
def api(store, tmp_path):
    from api import create_app

    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml")
    sent = []
    rt = Runtime(settings, sender=lambda *a: sent.append(a))
    rt.__dict__["store"] = store
    app = create_app(rt)
    keys = {}
    with store.session() as s:
        for role in ("viewer", "operator", "admin"):
            keys[role] = {"X-API-Key": create_key(s, name=role, role=role)[1]}
    client = app.test_client()
    client.keys, client.sent, client.rt = keys, sent, rt
    return client


def audit_rows(store):
    with store.session() as s:
        return [(a.actor, a.action, a.outcome) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_it_demands_a_key_and_the_right_role(api, store):
    assert api.get("/api/v1/assets").status_code == 401
    assert api.get("/api/v1/assets", headers={"X-API-Key": "dbm_wrong"}).status_code == 401
    assert api.get("/api/v1/assets", headers=api.keys["viewer"]).status_code == 200
    resp = api.post("/api/v1/scans", json={"kind": "host"}, headers=api.keys["viewer"])
    assert resp.status_code == 403 and "operator" in resp.json["message"]
    assert api.get("/api/v1/audit", headers=api.keys["operator"]).status_code == 403
    assert api.get("/api/v1/audit", headers=api.keys["admin"]).status_code == 200
    assert ("key:viewer", "POST /api/v1/scans", "denied") in audit_rows(store)


def test_it_queues_a_scan_in_the_ledger_and_audits_it(api, store):
    resp = api.post("/api/v1/scans", json={"kind": "host"}, headers=api.keys["operator"])
    assert resp.status_code == 202
    scan_id = resp.json["id"]
    assert api.sent == [("metrics.host_sample", {}, scan_id, "metrics")]
    status = api.get(f"/api/v1/scans/{scan_id}", headers=api.keys["viewer"]).json
    assert (status["status"], status["kind"], status["requested_by"]) == ("queued", "host", "key:operator")
    assert ("key:operator", "scan.request", "ok") in audit_rows(store)
    assert api.get("/api/v1/scans/nope", headers=api.keys["viewer"]).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"kind": "teleport"}, "kind"),
    ({}, "kind"),
    ({"kind": "reachability", "asset_id": "seven"}, "asset_id"),
    ({"kind": "host", "asset_id": 1}, "asset_id"),
    ({"kind": "reachability", "asset_id": 999}, "asset_id"),
])
def test_it_answers_bad_scan_requests_with_field_errors(api, store, body, field):
    resp = api.post("/api/v1/scans", json=body, headers=api.keys["operator"])
    assert resp.status_code == 400
    assert field in resp.json["errors"]
    with store.session() as s:
        assert s.scalars(select(TaskRun)).all() == []


def test_it_never_answers_malformed_json_with_a_500(api):
    resp = api.post("/api/v1/scans", data="{not json", headers={**api.keys["operator"],
                                                               "Content-Type": "application/json"})
    assert resp.status_code == 400


def test_it_filters_and_pages_events(api, store):
    with store.session() as s:
        for i in range(7):
            record_event(s, type="asset.down" if i % 2 else "asset.up", severity="critical" if i % 2 else "info")
    page = api.get("/api/v1/events?type=asset.*&per_page=3&page=2", headers=api.keys["viewer"]).json
    assert (page["total"], page["pages"], len(page["items"])) == (7, 3, 3)
    crit = api.get("/api/v1/events?min_severity=warning", headers=api.keys["viewer"]).json
    assert crit["total"] == 3 and {e["type"] for e in crit["items"]} == {"asset.down"}
    bad = api.get("/api/v1/events?since=yesterday&per_page=0", headers=api.keys["viewer"])
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"since", "per_page"}


def test_a_type_prefix_is_matched_literally_not_as_a_like_pattern(api, store):
    with store.session() as s:
        for type_ in ("app_x.started", "appYx.started", "app%x.started", "zzz.other"):
            record_event(s, type=type_)

    def types(prefix):
        page = api.get(f"/api/v1/events?type={prefix}", headers=api.keys["viewer"]).json
        return sorted(e["type"] for e in page["items"])

    assert types("app_x.*") == ["app_x.started"]
    assert types("app%25x.*") == ["app%x.started"]
    assert types("%25*") == []
    assert types("_*") == []


def test_it_never_returns_stored_passwords(api, store, monkeypatch):
    monkeypatch.setenv("PW", "sup3r-s3cret")
    config = parse_config({"assets": [{"name": "a", "engine": "postgresql", "host": "h", "database": "d",
                                       "password_env": "PW"}]})
    with store.session() as s:
        sync_config_assets(s, config, api.rt.credentials)
    body = api.get("/api/v1/assets", headers=api.keys["viewer"]).get_data(as_text=True)
    assert '"name": "a"' in body and "sup3r-s3cret" not in body and "secret" not in body
    one = api.get("/api/v1/assets/1", headers=api.keys["viewer"])
    assert one.status_code == 200 and "sup3r" not in one.get_data(as_text=True)
    assert api.get("/api/v1/assets/42", headers=api.keys["viewer"]).status_code == 404


def test_admins_manage_keys_and_the_plain_key_is_shown_once(api, store):
    created = api.post("/api/v1/apikeys", json={"name": "ci", "role": "viewer"}, headers=api.keys["admin"])
    assert created.status_code == 201 and created.json["key"].startswith("dbm_")
    listed = api.get("/api/v1/apikeys", headers=api.keys["admin"]).get_data(as_text=True)
    assert created.json["key"] not in listed
    assert api.get("/api/v1/assets", headers={"X-API-Key": created.json["key"]}).status_code == 200
    assert api.delete(f"/api/v1/apikeys/{created.json['id']}", headers=api.keys["admin"]).status_code == 200
    assert api.get("/api/v1/assets", headers={"X-API-Key": created.json["key"]}).status_code == 401
    bad = api.post("/api/v1/apikeys", json={"name": "x", "role": "god"}, headers=api.keys["admin"])
    assert bad.status_code == 400 and "role" in bad.json["errors"]
    assert ("key:admin", "apikey.create", "ok") in audit_rows(store)


def test_it_publishes_an_openapi_document_and_health(api):
    spec = api.get("/api/v1/swagger.json").json
    assert {"/scans", "/scans/{scan_id}", "/assets", "/events"} <= set(spec["paths"])
    assert spec["securityDefinitions"]["apikey"]["name"] == "X-API-Key"
    health = api.get("/healthz")
    assert health.status_code == 200 and health.json["checks"]["database"]["ok"]


def test_health_reports_an_unreachable_broker_as_503(store, tmp_path):
    from api import create_app
    from tests.peers import closed_port

    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             broker_url=f"redis://127.0.0.1:{closed_port()}/0")
    rt = Runtime(settings)
    rt.__dict__["store"] = store
    resp = create_app(rt).test_client().get("/healthz")
    assert resp.status_code == 503 and resp.json["checks"]["broker"]["ok"] is False


def test_the_status_page_shows_assets_and_events(api, store):
    with store.session() as s:
        sync_config_assets(s, parse_config({"assets": [{"name": "ledger-db", "engine": "sqlite",
                                                        "path": "/x.db"}]}), api.rt.credentials)
    page = api.get("/", headers=api.keys["viewer"]).get_data(as_text=True)
    assert "ledger-db" in page and "asset.registered" in page
