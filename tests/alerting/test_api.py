"""The alerts API: listing, acknowledge and resolve, silences, rules, test send, and the
signed acknowledge link, with real keys and a real store."""

from __future__ import annotations

import pytest
import yaml

from monitor_app.store.base import utcnow
from tests.alerting.helpers import add_asset, add_event

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture()
def api(store, tmp_path, webhook_peer):
    from api import create_app
    from monitor_app.access.api_keys import create_key
    from monitor_app.platform.runtime import Runtime
    from monitor_app.config.settings import load_settings

    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump({"alerting": {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "severity": "page"}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_peer.url()}},
        "route": {"channels": ["ops"]},
        "escalation_policies": {"oncall": {"severities": ["page"], "steps": [{"after": "10m", "channels": ["ops"]}]}},
    }}))
    sent = []
    settings = load_settings(data_dir=tmp_path, database_url=store.url, config_file=tmp_path / "dbmon.yaml",
                             secret_key="api-test-key")
    rt = Runtime(settings, sender=lambda name, kwargs, run_id, queue: sent.append((name, kwargs)))
    keys = {}
    with store.session() as s:
        for role in ("viewer", "operator", "admin"):
            keys[role] = create_key(s, name=f"{role}-key", role=role)[1]
    client = create_app(rt).test_client()

    class Api:
        runtime, dispatched = rt, sent

        def call(self, method, path, role="viewer", **kw):
            headers = {"X-API-Key": keys[role]} if role else {}
            return getattr(client, method)(f"/api/v1/alerts{path}", headers=headers, **kw)

        def raw(self):
            return client

    yield Api()
    rt.close()


def fire(api, store, name="orders") -> None:
    from monitor_app.alerting.service import alert_operations_for

    engine = alert_operations_for(api.runtime)
    outcome = engine.evaluate_events([add_event(store, "asset.down", add_asset(store, name), utcnow())])
    engine.deliver_due_now(outcome.deliver)


def open_incident(api, store, name="orders") -> int:
    fire(api, store, name)
    return api.call("get", "/incidents").json["items"][0]["id"]


def test_it_lists_alerts_and_incidents_with_filters(api, store):
    incident = open_incident(api, store)
    alerts = api.call("get", "/alerts?state=firing").json
    assert alerts["total"] == 1 and alerts["items"][0]["labels"]["asset"] == "orders"
    assert api.call("get", "/alerts?state=resolved").json["total"] == 0
    detail = api.call("get", f"/incidents/{incident}").json
    assert detail["status"] == "open" and detail["escalation"] == "oncall" and len(detail["alerts"]) == 1
    assert api.call("get", "/incidents?status=bogus").status_code == 400
    assert api.call("get", "/incidents", role=None).status_code == 401


def test_it_acknowledges_and_resolves_with_operator_keys_only(api, store):
    incident = open_incident(api, store)
    assert api.call("post", f"/incidents/{incident}/acknowledge", role="viewer").status_code == 403
    ack = api.call("post", f"/incidents/{incident}/acknowledge", role="operator")
    assert ack.status_code == 200 and ack.json == {"id": incident, "status": "acknowledged",
                                                   "acknowledged_by": "key:operator-key"}
    resolved = api.call("post", f"/incidents/{incident}/resolve", role="operator").json
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "key:operator-key"
    assert [name for name, _ in api.dispatched] == ["alerts.deliver"]
    log = api.call("get", f"/incidents/{incident}/notifications").json["items"]
    assert [(n["kind"], n["status"]) for n in log] == [("firing", "sent"), ("resolved", "pending")]
    assert log[0]["log"][0]["outcome"] == "sent"
    assert api.call("post", "/incidents/999/acknowledge", role="operator").status_code == 404


def test_it_creates_lists_and_expires_silences(api, store):
    bad = api.call("post", "/silences", role="operator", json={"matchers": ["env=~("], "duration": "soon"})
    assert bad.status_code == 400 and "duration" in bad.json["errors"]
    bad = api.call("post", "/silences", role="operator", json={"matchers": ["env=~("], "duration": "1h"})
    assert bad.status_code == 400 and "invalid regex" in bad.json["errors"]["matchers"]
    created = api.call("post", "/silences", role="operator",
                       json={"matchers": ["asset=orders"], "duration": "2h", "comment": "upgrade"})
    assert created.status_code == 201 and created.json["state"] == "active"
    assert created.json["created_by"] == "key:operator-key"
    fire(api, store)
    assert api.call("get", "/alerts").json["items"][0]["silenced"] is True
    assert api.call("get", "/incidents").json["total"] == 0  # muted: no incident, no page
    assert api.call("get", "/silences").json["total"] == 1
    expired = api.call("delete", f"/silences/{created.json['id']}", role="operator").json
    assert expired["state"] == "expired"
    assert api.call("get", "/incidents").json["total"] == 1  # still firing, so it pages now
    assert [name for name, _ in api.dispatched] == ["alerts.deliver"]
    assert api.call("get", "/silences?state=expired").json["total"] == 1


def test_it_adds_api_rules_with_field_errors(api):
    bad = api.call("post", "/rules", role="admin", json={"name": "lag", "kind": "threshold", "metric": "lag",
                                                         "value": "lots", "for": "5 min"})
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"rule.value", "rule.for"}
    assert api.call("post", "/rules", role="operator", json={}).status_code == 403
    ok = api.call("post", "/rules", role="admin", json={"name": "lag", "kind": "threshold", "metric": "lag",
                                                        "value": 30, "for": "5m"})
    assert ok.status_code == 201 and ok.json["for"] == 300
    clash = api.call("post", "/rules", role="admin", json={"name": "AssetDown", "kind": "event", "event_types": ["x"]})
    assert clash.status_code == 400
    names = [(r["name"], r["source"]) for r in api.call("get", "/rules").json["items"]]
    # The config's AssetDown replaces the built-in one of that name; the other built-ins are listed.
    assert names[0] == ("AssetDown", "config") and names[-1] == ("lag", "api")
    assert ("PostureCriticalFinding", "default") in names and ("AssetDown", "default") not in names
    assert api.call("delete", "/rules/lag", role="admin").status_code == 200


def test_it_queues_a_test_send_for_a_channel(api, webhook_peer):
    queued = api.call("post", "/channels/ops/test", role="operator")
    assert queued.status_code == 202
    assert api.dispatched == [("alerts.deliver", {"notification_id": queued.json["notification_id"]})]
    assert api.call("post", "/channels/nope/test", role="operator").status_code == 404
    assert api.call("get", "/channels").json["items"] == [{"name": "ops", "type": "webhook", "send_resolved": True,
                                                           "rate_limit": None}]


def test_it_acknowledges_through_the_signed_link_after_a_confirm(api, store, webhook_peer):
    incident = open_incident(api, store)
    link = webhook_peer.wait_for(1)[0].json()["dbmon"]["ackURL"]
    path = link.split("8080", 1)[1]
    client = api.raw()
    page = client.get(path)
    assert page.status_code == 200 and b'<form method="post">' in page.data
    assert api.call("get", f"/incidents/{incident}").json["status"] == "open"  # GET changes nothing
    done = client.post(path, data={"confirm": "1"})
    assert done.status_code == 200 and b"Acknowledged by link" in done.data
    assert api.call("get", f"/incidents/{incident}").json["acknowledged_by"] == "ack-link"
    assert client.post(path[:-3] + "abc").status_code == 400
