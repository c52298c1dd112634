"""`dbmon alerts ...` against a real store and a real webhook receiver."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from monitor_app.store.base import utcnow
from tests.alerting.helpers import add_asset, add_event

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture()
def cli(store, tmp_path, monkeypatch, webhook_peer):
    from monitor_app.cli.main import cli as root
    from monitor_app.config.settings import get_settings

    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump({"alerting": {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"]}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_peer.url()},
                     "dead": {"type": "webhook", "allow_private_targets": True, "url": "http://127.0.0.1:9/nothing", "timeout": 1}},
        "route": {"channels": ["ops"]}}}))
    for key, value in {"DATABASE_URL": store.url, "CONFIG_FILE": str(tmp_path / "dbmon.yaml"),
                       "DATA_DIR": str(tmp_path), "SECRET_KEY": "cli-test", "BROKER_URL": "filesystem://"}.items():
        monkeypatch.setenv(f"DBMON_{key}", value)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(root, ["alerts", *args], catch_exceptions=False)
    get_settings.cache_clear()


def fire(store) -> None:
    from monitor_app.alerting.config import load_alerting_config
    from monitor_app.alerting.operations import AlertOperations
    from monitor_app.config.declarative import load_config
    import os

    cfg = load_config(os.environ["DBMON_CONFIG_FILE"]).alerting
    AlertOperations(store, load_alerting_config(cfg), "cli-test").evaluate_events(
        [add_event(store, "asset.down", add_asset(store, "orders"), utcnow())])


def test_it_test_sends_to_a_channel_and_reports_failure_by_exit_status(cli, webhook_peer):
    ok = cli("test-send", "ops")
    assert ok.exit_code == 0 and json.loads(ok.output)["outcome"] == "sent"
    assert webhook_peer.wait_for(1)[0].json()["dbmon"]["kind"] == "test"
    bad = cli("test-send", "dead")
    assert bad.exit_code == 1 and json.loads(bad.output)["outcome"] == "retry"
    missing = cli("test-send", "nope")
    assert missing.exit_code == 2 and "no channel named 'nope'" in missing.output


def test_it_lists_acknowledges_and_resolves(cli, store):
    fire(store)
    listed = json.loads(cli("list", "--json").output)
    assert [a["rule"] for a in listed] == ["AssetDown"]
    incident = listed[0]["incident_id"]
    assert "open" in cli("incidents").output
    assert cli("ack", str(incident)).output.strip() == f"incident {incident}: acknowledged"
    assert "resolved (1 alert(s) cleared)" in cli("resolve", str(incident)).output
    assert cli("incidents").output == ""
    assert cli("ack", "999").exit_code == 2


def test_it_adds_lists_and_expires_silences(cli):
    added = cli("silence", "add", "asset=orders", "alertname=~Asset.*", "--duration", "90m", "--comment", "upgrade")
    assert added.exit_code == 0 and added.output.startswith("silence 1 until ")
    listed = json.loads(cli("silence", "list", "--json").output)
    assert listed[0]["matchers"] == 'asset="orders",alertname=~"Asset.*"' and listed[0]["state"] == "active"
    assert cli("silence", "add", "env=~(", "--duration", "1h").exit_code == 2
    assert cli("silence", "add", "env=prod", "--duration", "whenever").exit_code == 2
    assert cli("silence", "expire", "1").output.strip() == "silence 1 expired"
    assert cli("silence", "list").output == ""
