"""A config file that breaks while dbmon runs: the API and the worker keep the last good
config, one config event is recorded, viewers learn only since when it is invalid."""

from __future__ import annotations

import requests
from sqlalchemy import select

from monitor_app.access.api_keys import create_key
from monitor_app.store.models import Asset, Event
from tests.harness import wait_for
from tests.services import free_port

GOOD = """\
assets:
  - name: orders
    engine: sqlite
    path: {db}
alerting:
  rules:
    - {{name: AssetDown, kind: event, event_types: [asset.down]}}
  channels:
    ops: {{type: webhook, url: "http://127.0.0.1:9/hook"}}
  route: {{channels: [ops]}}
"""
BROKEN_YAML = "assets:\n  - name: orders\n    engine: sqlite\n    path: [unclosed\n"
BROKEN_FIELDS = "assets:\n  - name: orders\n    engine: oracle\n    port: 99999\n"


def events(deployment, type_):
    with deployment.runtime.store.session() as s:
        return s.scalars(select(Event).where(Event.type == type_).order_by(Event.id)).all()


def config_assets(deployment):
    with deployment.runtime.store.session() as s:
        return {a.name: a.gone_at for a in s.scalars(select(Asset).where(Asset.source == "config"))}



def own_rules(listing: dict) -> list[str]:
    """The file's rules, not the built-in pack merged under them."""
    return [r["name"] for r in listing["items"] if r["source"] != "default"]

def test_api_and_worker_keep_the_last_good_config_when_the_file_breaks(deployment, tmp_path):
    deployment.write_config(GOOD.format(db=tmp_path / "orders.db"))
    port = free_port()
    deployment.start_worker()
    deployment.start("api", "api", "--port", str(port))
    base = f"http://127.0.0.1:{port}/api/v1"
    with deployment.runtime.store.session() as s:
        viewer = {"X-API-Key": create_key(s, name="v", role="viewer")[1]}
        admin = {"X-API-Key": create_key(s, name="a", role="admin")[1]}

    def get(path, key=viewer):
        return requests.get(base + path, headers=key, timeout=10)

    wait_for(lambda: _answers(base), 30, interval=0.2, what="API up")
    assert deployment.scan("assets.sync_config").status == "done"
    assert set(config_assets(deployment)) == {"orders"}
    assert [c["name"] for c in get("/alerts/channels").json()["items"]] == ["ops"]

    for broken in (BROKEN_YAML, BROKEN_FIELDS):
        deployment.write_config(broken)
        # Every API worker process, each on its first look at the broken file.
        for _ in range(6):
            channels = get("/alerts/channels")
            assert channels.status_code == 200 and [c["name"] for c in channels.json()["items"]] == ["ops"]
            rules = get("/alerts/rules")
            assert rules.status_code == 200 and own_rules(rules.json()) == ["AssetDown"]
            assert "line" not in rules.text and "oracle" not in rules.text

        status = get("/config")
        assert status.status_code == 200
        body = status.json()
        assert body["valid"] is False and body["invalid_since"]
        assert "errors" not in body and "unclosed" not in status.text and "line" not in status.text
        detail = get("/config", admin).json()
        assert detail["valid"] is False and detail["errors"]
        if broken is BROKEN_FIELDS:
            assert {e["field"] for e in detail["errors"]} >= {"assets[0].engine", "assets[0].port"}

        # A worker started after the break never saw a good file, and still acts on the last good one.
        deployment.kill("worker")
        deployment.start_worker()
        run = deployment.scan("assets.sync_config")
        assert run.status == "done", run.error
        assert config_assets(deployment) == {"orders": None}

    invalid = wait_for(lambda: len(events(deployment, "config.invalid")) == 2 and events(deployment, "config.invalid"),
                       20, what="two config.invalid events")
    assert all(e.severity == "warning" and "errors" not in e.payload for e in invalid)
    assert "oracle" not in str([e.payload for e in invalid]) and "unclosed" not in str([e.summary for e in invalid])

    deployment.write_config(GOOD.format(db=tmp_path / "orders.db").replace("AssetDown", "AssetGone"))
    wait_for(lambda: own_rules(get("/alerts/rules").json()) == ["AssetGone"], 20,
             what="the fixed file in force")
    assert get("/config").json()["valid"] is True
    wait_for(lambda: len(events(deployment, "config.restored")) == 1, 20, what="config.restored event")


def _answers(base: str) -> bool:
    try:
        return requests.get(base + "/swagger.json", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_process_that_never_saw_a_good_file_answers_503_without_the_errors(store, tmp_path):
    from tests.api_input.conftest import build_api

    (tmp_path / "dbmon.yaml").write_text(BROKEN_FIELDS)
    api = build_api(store, tmp_path)
    resp = api.get("/api/v1/alerts/channels", headers=api.keys["viewer"])
    assert resp.status_code == 503 and "invalid (since" in resp.json["message"]
    assert "errors" not in resp.json and "oracle" not in resp.get_data(as_text=True)
    viewer = api.get("/api/v1/config", headers=api.keys["viewer"]).json
    assert (viewer["valid"], viewer["in_force"], "errors" in viewer) == (False, "none", False)
    admin = api.get("/api/v1/config", headers=api.keys["admin"]).json
    assert "assets[0].engine" in {e["field"] for e in admin["errors"]}
    with store.session() as s:
        [event] = s.scalars(select(Event).where(Event.type == "config.invalid")).all()
    assert "no good config" in event.summary and "oracle" not in event.summary
