"""What the public and viewers see: the anonymous status page shows status only; labels that
look like secrets (and dbmon's credential labels) are redacted wherever the API returns them."""

from __future__ import annotations

import json

import pytest
import yaml

from monitor_app.access.api_keys import create_key
from monitor_app.assets.config_assets import sync_config_assets
from monitor_app.config.declarative import parse_config
from monitor_app.platform.event_log import record_event
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import Asset
from monitor_app.store.models.containers import ContainerState

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SECRET_LABELS = {"dbmon.password_env": "PG_MONITOR_PW", "dbmon.user": "monitor_bob", "dbmon.database": "ledger_prod",
                 "API_TOKEN": "tok-8f2b1c", "db_password": "hunter2-xyz", "aws.secret.access": "AKIA-s3cr3t",
                 "traefik.http.middlewares.a.basicauth.users": "bob:$apr1$hash", "vault_credentials": "vc-9911",
                 "signing_key": "sk-77aa"}
PLAIN_LABELS = {"team": "orders", "env": "prod", "dbmon.engine": "postgres"}


@pytest.fixture()
def make_client(store, tmp_path):
    made = []

    def build(**settings):
        config = tmp_path / "dbmon.yaml"
        if not config.exists():
            config.write_text(yaml.safe_dump({"alerting": {
                "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}]}}))
        rt = Runtime(load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                                   config_file=config, **settings), sender=lambda *a: None)
        rt.__dict__["store"] = store
        made.append(rt)
        from api import create_app

        client = create_app(rt).test_client()
        with store.session() as s:
            client.viewer = {"X-API-Key": create_key(s, name="viewer", role="viewer")[1]}
        client.rt = rt
        return client
    yield build
    for rt in made:
        rt.close()


def seed_status(client, store):
    with store.session() as s:
        sync_config_assets(s, parse_config({"assets": [{"name": "ledger-db", "engine": "postgresql",
                                                        "host": "10.20.30.40", "database": "ledger",
                                                        "user": "ledger_ro"}]}), client.rt.credentials)
        asset_id = s.query(Asset.id).filter(Asset.name == "ledger-db").scalar()
        record_event(s, type="asset.down", severity="critical", asset_id=asset_id,
                     summary="ledger-db is unreachable: connection to 10.20.30.40:5432 refused for ledger_ro")
        s.get(Asset, asset_id).status = "down"


def test_the_anonymous_status_page_shows_status_only(make_client, store):
    client = make_client()
    seed_status(client, store)
    public = client.get("/")
    assert public.status_code == 200
    page = public.get_data(as_text=True)
    assert "1 asset(s) down" in page
    for leak in ("ledger-db", "10.20.30.40", "ledger_ro", "unreachable", "asset.down", "asset.registered"):
        assert leak not in page, leak

    viewer = client.get("/", headers=client.viewer).get_data(as_text=True)
    assert "ledger-db" in viewer and "10.20.30.40:5432 refused" in viewer and "asset.down" in viewer


def test_the_public_may_be_shown_details_or_nothing_by_setting(make_client, store):
    full = make_client(public_status_detail="full")
    seed_status(full, store)
    assert "ledger-db" in full.get("/").get_data(as_text=True)
    closed = make_client(public_status_page=False)
    signed_out = closed.get("/")
    assert signed_out.status_code == 302 and signed_out.headers["Location"].startswith("/login")
    assert "ledger-db" not in signed_out.get_data(as_text=True)
    assert "ledger-db" in closed.get("/", headers=closed.viewer).get_data(as_text=True)


def test_a_bad_status_detail_setting_names_the_variable(monkeypatch):
    from monitor_app.errors import ConfigError

    monkeypatch.setenv("DBMON_PUBLIC_STATUS_DETAIL", "everything")
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert exc.value.errors[0][0] == "DBMON_PUBLIC_STATUS_DETAIL"


def seed_container(store) -> tuple[int, str]:
    labels = {**SECRET_LABELS, **PLAIN_LABELS}
    cid = "f" * 64
    with store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name="pg-ledger", source="docker", external_id="pg-ledger",
                      labels=labels, connection={"host": "127.0.0.1", "port": 5432},
                      details={"container_id": cid, "labels": labels, "endpoints": []}, status="up")
        s.add(asset)
        s.flush()
        s.add(ContainerState(container_id=cid, name="pg-ledger", image="postgres:16", engine="postgresql",
                             is_database=True, confidence=1.0, reasons=[], status="running", asset_id=asset.id,
                             record={"id": cid, "name": "pg-ledger", "labels": labels, "env_names": []},
                             last_event_nano=0, restart_count=0))
        record_event(s, type="asset.changed", asset_id=asset.id, summary="pg-ledger changed: labels",
                     payload={"changed": ["labels"], "before": {"labels": {"team": "orders"}},
                              "after": {"labels": labels}})
        return asset.id, cid


def test_labels_that_look_like_secrets_are_redacted_for_viewers(make_client, store):
    client = make_client()
    asset_id, cid = seed_container(store)
    urls = ["/api/v1/assets", f"/api/v1/assets/{asset_id}", f"/api/v1/containers/{cid}",
            f"/api/v1/containers/assets/{asset_id}", f"/api/v1/containers/assets/{asset_id}/events",
            "/api/v1/events"]
    for url in urls:
        resp = client.get(url, headers=client.viewer)
        assert resp.status_code == 200, url
        text = resp.get_data(as_text=True)
        for value in SECRET_LABELS.values():
            assert value not in text, (url, value)
        assert '"team": "orders"' in text or '"team":"orders"' in text, url
    asset = client.get(f"/api/v1/assets/{asset_id}", headers=client.viewer).json
    assert asset["labels"]["API_TOKEN"] == "[redacted]" and asset["labels"]["env"] == "prod"
    assert asset["details"]["labels"]["dbmon.user"] == "[redacted]"


def test_alert_labels_copied_from_an_asset_are_redacted_too(make_client, store):
    from monitor_app.alerting.service import alert_operations_for

    client = make_client()
    asset_id, _ = seed_container(store)
    engine = alert_operations_for(client.rt)
    with store.session() as s:
        event_id = record_event(s, type="asset.down", severity="critical", asset_id=asset_id, summary="down").id
    engine.evaluate_events([event_id])
    for url in ("/api/v1/alerts/alerts", "/api/v1/alerts/incidents/1"):
        text = client.get(url, headers=client.viewer).get_data(as_text=True)
        assert "pg-ledger" in text, url
        for value in SECRET_LABELS.values():
            assert value not in text, (url, value)


def test_the_deny_list_is_configurable(make_client, store):
    client = make_client(label_denylist="team,*token*")
    asset_id, _ = seed_container(store)
    labels = client.get(f"/api/v1/assets/{asset_id}", headers=client.viewer).json["labels"]
    assert labels["team"] == "[redacted]" and labels["API_TOKEN"] == "[redacted]"
    assert labels["db_password"] == "hunter2-xyz"  # the operator's list replaces the default one
    assert json.dumps(labels).count("[redacted]") == 2
