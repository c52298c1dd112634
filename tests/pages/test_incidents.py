"""Incidents from the real alerting path: the list, the timeline and notification log, and
acknowledge, resolve and silence from the page, audited like the API's."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from monitor_app.alerting.operations import AlertOperations
from monitor_app.alerting.service import alert_operations_for
from monitor_app.assets import lifecycle
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, AuditEntry
from monitor_app.store.models.alerting import EscalationState, Incident, Notification, Silence


def fire(pages, store, name: str = "orders") -> int:
    """An asset goes down for real: lifecycle event, rule evaluation, delivery to the webhook peer."""
    with store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name=name, source="config", external_id=name,
                      labels={}, connection={}, details={}, status="up")
        s.add(asset)
        s.flush()
        lifecycle.fail(s, asset, f"{name} is unreachable: connection refused")
        event_ids = list(s.info["dbmon_new_event_ids"])
    engine = alert_operations_for(pages.rt)
    engine.deliver_due_now(engine.evaluate_events(event_ids).deliver)
    with store.session() as s:
        return s.scalar(select(Incident.id).where(Incident.title.contains(name)))


def audit_rows(store, action: str) -> list[AuditEntry]:
    with store.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_detail_shows_the_timeline_and_the_notification_log(pages, store, webhook_peer):
    incident = fire(pages, store)
    assert len(webhook_peer.wait_for(1)) == 1
    b = pages.browser("viewer")
    listing = b.get("/incidents").get_data(as_text=True)
    assert f'href="/incidents/{incident}"' in listing and "orders" in listing
    page = b.get(f"/incidents/{incident}").get_data(as_text=True)
    timeline = re.findall(r'data-kind="(\w+)">.*?<span>(.*?)</span>', page.split('id="timeline"')[1].split("</ol>")[0])
    kinds = [k for k, _ in timeline]
    assert kinds[:2] == ["fired", "fired"] and "notified" in kinds and "delivery" in kinds
    assert any("Notified via ops" in text for _, text in timeline)
    assert any("Delivery to ops sent" in text for _, text in timeline)
    log = page.split('id="notifications"')[1].split("</table>")[0]
    assert re.search(r'<th scope="row">ops</th><td>firing</td><td class="outcome-sent">sent</td>\s*<td>1</td>', log)
    assert "oncall: active" in page and 'id="ack"' not in page  # a viewer gets no buttons
    assert b.get("/incidents/999999").status_code == 404


def test_acknowledging_from_the_page_stops_escalation(pages, store):
    incident = fire(pages, store)
    ops = alert_operations_for(pages.rt)
    later = AlertOperations(store, ops.cfg, "pages-test-key", clock=lambda: utcnow() + timedelta(minutes=11))
    [(due_incident, token)] = later.sweep().escalate  # unacknowledged, the 10-minute step would run
    assert due_incident == incident
    b = pages.browser("operator")
    page = b.get(f"/incidents/{incident}").get_data(as_text=True)
    assert 'id="ack"' in page and 'id="resolve"' in page
    done = b.post(f"/incidents/{incident}/acknowledge", token_from=f"/incidents/{incident}")
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/incidents/{incident}")
    after = b.get(f"/incidents/{incident}").get_data(as_text=True)
    assert "Acknowledged: escalation and repeats stop" in after
    assert "Acknowledged by key:operator-key" in after and "Escalation (oncall) stopped: acknowledged" in after
    assert later.escalate(incident, token) == {"outcome": "stale", "deliver": []}
    assert later.sweep().escalate == []
    with store.session() as s:
        state = s.scalar(select(EscalationState).where(EscalationState.incident_id == incident))
        assert (state.status, state.stopped_reason) == ("stopped", "acknowledged")
        assert s.scalar(select(Notification.id).where(Notification.kind == "escalation")) is None
        assert s.get(Incident, incident).status == "acknowledged"
    [row] = audit_rows(store, "incident.acknowledge")
    assert row.actor == "key:operator-key" and row.target == f"incident:{incident}" and row.detail["via"] == "page"


def test_resolving_from_the_page_clears_the_alerts_and_queues_the_resolved_notice(pages, store):
    incident = fire(pages, store)
    b = pages.browser("operator")
    assert b.post(f"/incidents/{incident}/resolve", token_from=f"/incidents/{incident}").status_code == 303
    page = b.get(f"/incidents/{incident}").get_data(as_text=True)
    assert "Incident resolved by key:operator-key" in page and "Alert AssetDown on orders resolved" in page
    assert ("alerts.deliver" in [name for name, _ in pages.dispatched])
    assert f'href="/incidents/{incident}"' in b.get("/incidents?state=resolved").get_data(as_text=True)
    assert f'href="/incidents/{incident}"' not in b.get("/incidents?state=active").get_data(as_text=True)
    assert f'href="/incidents/{incident}"' not in b.get("/incidents?severity=info").get_data(as_text=True)
    assert audit_rows(store, "incident.resolve")[0].detail["alerts_resolved"] == 1


def test_the_silence_form_creates_a_silence_and_refuses_bad_input_by_field(pages, store):
    incident = fire(pages, store)
    b = pages.browser("operator")
    page = b.get(f"/incidents/{incident}").get_data(as_text=True)
    prefilled = re.search(r'<textarea id="silence-matchers"[^>]*>([^<]*)</textarea>', page).group(1)
    assert prefilled.split("\n") == ["alertname=&#34;AssetDown&#34;", "asset=&#34;orders&#34;"]
    bad = b.post(f"/incidents/{incident}/silence", {"matchers": "asset=orders", "duration": "forever"},
                 token_from=f"/incidents/{incident}")
    assert bad.status_code == 400 and "cannot read duration" in bad.get_data(as_text=True)
    assert audit_rows(store, "silence.create")[0].outcome == "invalid"
    made = b.post(f"/incidents/{incident}/silence",
                  {"matchers": 'alertname="AssetDown"\nasset="orders"\n', "duration": "2h", "comment": "resize"},
                  token_from=f"/incidents/{incident}")
    assert made.status_code == 303
    with store.session() as s:
        [silence] = s.scalars(select(Silence)).all()
        assert silence.created_by == "key:operator-key" and silence.comment == "resize"
        assert abs((silence.ends_at - utcnow()).total_seconds() - 7200) < 60
        state = s.scalar(select(EscalationState).where(EscalationState.incident_id == incident))
        assert state.stopped_reason == "silenced"  # every firing alert of the incident is muted now
    assert f"Silence {silence.id} created" in b.get(f"/incidents/{incident}").get_data(as_text=True)
    assert [r.outcome for r in audit_rows(store, "silence.create")] == ["invalid", "ok"]
