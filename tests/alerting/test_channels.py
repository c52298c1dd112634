"""Each channel against a real peer: Slack-format endpoint, SMTP with STARTTLS, Apprise,
and user templates replacing built-in ones."""

from __future__ import annotations

from tests.alerting.helpers import add_asset, add_event, drain


def rules() -> list:
    return [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"],
             "severity": "critical", "annotations": {"summary": "{{ asset }} <unreachable> & down",
                                                     "description": "probe said: {{ event.summary }}"}}]


def fire_and_resolve(store, clock, engine) -> None:
    db = add_asset(store, "orders-db")
    drain(engine, engine.evaluate_events([add_event(store, "asset.down", db, clock(), summary="refused")]).deliver)
    clock.advance(30)
    drain(engine, engine.evaluate_events([add_event(store, "asset.up", db, clock())]).deliver)


def test_it_posts_block_kit_to_a_configurable_slack_base_url(store, clock, make_engine, slack_peer):
    engine = make_engine({"rules": rules(), "route": {"channels": ["chat"]},
                          "channels": {"chat": {"type": "slack", "allow_private_targets": True, "base_url": slack_peer.url(""),
                                                "path": "/services/T000/B000/XXXX"}}})
    fire_and_resolve(store, clock, engine)
    firing, resolved = slack_peer.wait_for(2)
    assert firing.path == "/services/T000/B000/XXXX"
    message = firing.json()
    assert message["text"].startswith("FIRING AssetDown on orders-db")
    types = [b["type"] for b in message["blocks"]]
    assert types[0] == "header" and "actions" in types and types[-1] == "context"
    alert_block = message["blocks"][2]["text"]["text"]
    assert "&lt;unreachable&gt; &amp; down" in alert_block  # Slack mrkdwn escaping
    button = next(b for b in message["blocks"] if b["type"] == "actions")["elements"][0]
    assert "/api/v1/alerts/ack/" in button["url"]
    assert resolved.json()["text"].startswith("RESOLVED") and "actions" not in [b["type"] for b in resolved.json()["blocks"]]


def test_it_emails_html_and_text_over_starttls(store, clock, make_engine, smtp_peer):
    engine = make_engine({"rules": rules(), "route": {"channels": ["mail"]},
                          "channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": smtp_peer.port,
                                                "from": "dbmon@example.org", "to": ["dba@example.org", "ops@example.org"],
                                                "ca_file": smtp_peer.ca_file}}})
    fire_and_resolve(store, clock, engine)
    assert len(smtp_peer.messages) == 2 and smtp_peer.tls_used == [True, True]
    msg = smtp_peer.messages[0]
    assert msg["Subject"].startswith("[dbmon] [FIRING:1] AssetDown on orders-db (critical)")
    assert msg["To"] == "dba@example.org, ops@example.org"
    assert msg["X-Dbmon-Idempotency-Key"].endswith(":mail:firing")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "probe said: refused" in text and "Acknowledge: http://127.0.0.1:8080/api/v1/alerts/ack/" in text
    assert "&lt;unreachable&gt; &amp; down" in html  # autoescaped in HTML only
    assert "<unreachable> & down" in text
    assert smtp_peer.messages[1]["Subject"].startswith("[dbmon] [RESOLVED:0]")


def test_it_refuses_to_send_mail_in_clear_text_when_tls_is_required(store, clock, make_engine):
    from aiosmtpd.controller import Controller

    from tests.services import free_port

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 ok"

    port = free_port()
    plain = Controller(Handler(), hostname="127.0.0.1", port=port)  # no TLS context: no STARTTLS offered
    plain.start()
    try:
        engine = make_engine({"channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                                                    "from": "a@example.org", "to": ["b@example.org"]}}})
        result = engine.deliver(engine.test_send("mail"))
    finally:
        plain.stop()
    assert result["outcome"] == "failed" and "does not offer STARTTLS" in result["error"]


def test_it_sends_through_apprise_urls(store, clock, make_engine, webhook_peer):
    url = webhook_peer.url("/apprise").replace("http://", "json://")
    engine = make_engine({"rules": rules(), "route": {"channels": ["other"]},
                          "channels": {"other": {"type": "apprise", "allow_private_targets": True, "urls": [url]}}})
    fire_and_resolve(store, clock, engine)
    firing, resolved = webhook_peer.wait_for(2)
    assert firing.path == "/apprise"
    assert firing.json()["title"] == "[FIRING] AssetDown on orders-db"
    assert "orders-db <unreachable> & down" in firing.json()["message"]


def test_it_uses_a_user_template_in_place_of_the_built_in_one(store, clock, make_engine, webhook_peer, tmp_path):
    (tmp_path / "tpl" / "webhook").mkdir(parents=True)
    (tmp_path / "tpl" / "webhook" / "payload.json.j2").write_text(
        '{"text": {{ (heading ~ " " ~ incident.title) | tojson }}, "key": {{ idempotency_key | tojson }}}')
    engine = make_engine({"rules": rules(), "route": {"channels": ["ops"]}, "template_dir": str(tmp_path / "tpl"),
                          "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_peer.url()}}})
    fire_and_resolve(store, clock, engine)
    assert webhook_peer.wait_for(1)[0].json() == {"text": "FIRING AssetDown on orders-db", "key": "incident:1:ops:firing"}


def test_it_fails_a_broken_user_template_permanently_with_its_name(store, clock, make_engine, webhook_peer, tmp_path):
    (tmp_path / "webhook").mkdir()
    (tmp_path / "webhook" / "payload.json.j2").write_text('{"text": {{ heading }')
    engine = make_engine({"template_dir": str(tmp_path), "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_peer.url()}}})
    result = engine.deliver(engine.test_send("ops"))
    assert result["outcome"] == "failed" and "webhook/payload.json.j2" in result["error"]


def test_it_sends_a_test_notification_to_a_channel(store, clock, make_engine, webhook_peer):
    engine = make_engine({"channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_peer.url()}}})
    assert engine.deliver(engine.test_send("ops"))["outcome"] == "sent"
    body = webhook_peer.wait_for(1)[0].json()
    assert body["dbmon"]["kind"] == "test" and body["alerts"][0]["labels"]["alertname"] == "DbmonTestNotification"


def test_it_retries_a_throttled_slack_endpoint_and_gives_up_on_a_gone_one(store, clock, make_engine, slack_peer):
    engine = make_engine({"channels": {"chat": {"type": "slack", "allow_private_targets": True, "webhook_url": slack_peer.url("/services/T/B/X")}}})
    slack_peer.mode, slack_peer.fail_status, slack_peer.retry_after = "fail", 429, "7"
    nid = engine.test_send("chat")
    assert engine.deliver(nid)["outcome"] == "retry"
    clock.advance(7)
    slack_peer.fail_status, slack_peer.retry_after = 404, None  # Slack's "no_service": the hook was removed
    result = engine.deliver(nid)
    assert result["outcome"] == "failed" and "HTTP 404" in result["error"]


def test_it_retries_a_temporary_smtp_refusal_but_not_a_permanent_one(store, clock, make_engine):
    from aiosmtpd.controller import Controller

    from tests.services import free_port

    answers = ["451 4.3.0 try again later", "550 5.1.1 no such mailbox", "250 OK"]

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return answers.pop(0)

    port = free_port()
    server = Controller(Handler(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        engine = make_engine({"channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                                                    "starttls": False, "from": "a@example.org",
                                                    "to": ["b@example.org"]}}})
        first, second = engine.test_send("mail"), engine.test_send("mail")
        assert engine.deliver(first)["outcome"] == "retry"
        assert engine.deliver(second)["outcome"] == "failed"
        clock.advance(60)
        assert engine.deliver(first)["outcome"] == "sent"
    finally:
        server.stop()
