"""Outbound HTTP of the channels: redirects are not followed (a 3xx is a failed send), only
status codes reach the notification log, and private targets need the channel's consent."""

from __future__ import annotations

import json
import secrets

import pytest
import yaml

from tests.alerting.redirect_peers import InternalService, Redirector

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture()
def internal():
    peer = InternalService("s3cr3t-" + secrets.token_hex(8))
    yield peer
    peer.stop()


@pytest.fixture()
def redirect_to():
    started = []

    def start(status: int, location: str) -> Redirector:
        started.append(Redirector(status, location))
        return started[-1]
    yield start
    for peer in started:
        peer.stop()


def loopback(spec: dict) -> dict:
    return {**spec, "allow_private_targets": True}


def test_a_307_does_not_carry_the_signed_body_and_headers_to_another_host(store, make_engine, webhook_peer,
                                                                        redirect_to):
    hop = redirect_to(307, webhook_peer.url("/stolen"))
    engine = make_engine({"channels": {"ops": loopback({"type": "webhook", "url": hop.url("/hook"),
                                                        "secret": "hmac-key", "headers": {"X-Receiver-Token": "tok"}})}})
    result = engine.deliver(engine.test_send("ops"))
    assert len(hop.requests) == 1
    assert webhook_peer.wait_for(1, timeout=1) == []  # nothing re-sent to the redirect's target
    assert result["outcome"] == "failed" and result["error"].startswith("HTTP 307"), result


def test_a_302_to_an_internal_url_is_not_fetched_and_nothing_of_it_reaches_a_viewer(store, tmp_path, internal,
                                                                                  redirect_to):
    from api import create_app
    from monitor_app.alerting.service import alert_operations_for
    from monitor_app.access.api_keys import create_key
    from monitor_app.platform.runtime import Runtime
    from monitor_app.config.settings import load_settings

    hop = redirect_to(302, internal.url("/admin/keys"))
    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump({"alerting": {"channels": {
        "ops": loopback({"type": "webhook", "url": hop.url("/hook")})}}}))
    rt = Runtime(load_settings(data_dir=tmp_path, database_url=store.url, config_file=tmp_path / "dbmon.yaml",
                               secret_key="k"), sender=lambda *a: None)
    try:
        engine = alert_operations_for(rt)
        nid = engine.test_send("ops")
        result = engine.deliver(nid)
        with store.session() as s:
            viewer = create_key(s, name="viewer", role="viewer")[1]
        seen = create_app(rt).test_client().get(f"/api/v1/alerts/notifications/{nid}", headers={"X-API-Key": viewer})
    finally:
        rt.close()
    assert seen.status_code == 200
    assert "internal-only" not in seen.get_data(as_text=True)
    assert internal.requests == []
    log = seen.get_json()
    assert log["status"] == "failed" and log["last_error"].startswith("HTTP 302"), log
    assert result["outcome"] == "failed"


def test_an_error_response_s_body_is_not_stored(store, make_engine, webhook_peer):
    webhook_peer.mode, webhook_peer.fail_status = "fail", 404  # the peer answers with a body ("unavailable")
    engine = make_engine({"channels": {"ops": loopback({"type": "webhook", "url": webhook_peer.url()})}})
    result = engine.deliver(engine.test_send("ops"))
    assert result == {"outcome": "failed", "error": "HTTP 404 Not Found"}


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_a_private_target_is_refused_unless_the_channel_allows_it(store, make_engine, webhook_peer, kind):
    spec = {"type": "webhook", "url": webhook_peer.url()} if kind == "webhook" else \
        {"type": "slack", "webhook_url": webhook_peer.url()}
    engine = make_engine({"channels": {"strict": spec, "lab": loopback(spec)}})
    refused = engine.deliver(engine.test_send("strict"))
    assert refused["outcome"] == "failed" and "127.0.0.1" in refused["error"] and "private" in refused["error"]
    assert webhook_peer.wait_for(1, timeout=0.5) == []
    assert engine.deliver(engine.test_send("lab"))["outcome"] == "sent"
    assert len(webhook_peer.wait_for(1)) == 1


def test_a_name_resolving_to_loopback_is_refused_too(store, make_engine, webhook_peer):
    engine = make_engine({"channels": {"ops": {"type": "webhook", "url": webhook_peer.url().replace("127.0.0.1", "localhost")}}})
    result = engine.deliver(engine.test_send("ops"))
    assert result["outcome"] == "failed" and "localhost" in result["error"], result
    assert webhook_peer.wait_for(1, timeout=0.5) == []


def test_apprise_does_not_follow_redirects_either(store, make_engine, webhook_peer, redirect_to):
    hop = redirect_to(307, webhook_peer.url("/stolen"))
    url = hop.url("/apprise").replace("http://", "json://")
    engine = make_engine({"channels": {"other": loopback({"type": "apprise", "urls": [url]}),
                                       "strict": {"type": "apprise", "urls": [url]}}})
    # A refused redirect is apprise's failed send: retried like any other until attempts run out.
    assert engine.deliver(engine.test_send("other"))["outcome"] == "retry"
    assert len(hop.requests) == 1
    assert webhook_peer.wait_for(1, timeout=1) == []
    refused = engine.deliver(engine.test_send("strict"))
    assert "private" in refused["error"] and len(hop.requests) == 1


def test_the_private_target_switch_is_a_boolean_named_in_errors():
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        load_alerting_config({"channels": {"ops": {"type": "webhook", "url": "http://x", "allow_private_targets": "maybe"}}})
    assert exc.value.errors[0][0] == "alerting.channels.ops.allow_private_targets", exc.value.errors
    cfg = load_alerting_config({"channels": {"ops": {"type": "webhook", "url": "https://hooks.example.org/x"}}})
    assert json.loads(cfg.channels["ops"].model_dump_json())["allow_private_targets"] is False


@pytest.mark.parametrize("address,public", [
    ("169.254.169.254", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("100.64.0.1", False), ("127.0.0.1", False), ("0.0.0.0", False), ("::1", False), ("fe80::1", False),
    ("fd00::1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False), ("8.8.8.8", True),
    ("2001:4860:4860::8888", True),
])
def test_addresses_are_classified_public_or_not(address, public):
    from monitor_app.alerting.channels.egress import is_public

    assert is_public(address) is public


def test_the_cloud_metadata_address_is_refused_before_any_connection(store, make_engine):
    engine = make_engine({"channels": {"ops": {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}}})
    result = engine.deliver(engine.test_send("ops"))
    assert result["outcome"] == "failed" and "169.254.169.254" in result["error"], result
