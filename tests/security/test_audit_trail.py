"""The audit trail records refusals, failures and system actions, without letting strangers flood it.

The API runs as a real HTTP server in a thread over a real store (SQLite and PostgreSQL);
requests come over TCP from real loopback addresses so `remote_addr` is what a client sends from.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import threading

import pytest
from sqlalchemy import select, text
from werkzeug.serving import make_server

from monitor_app.access.api_keys import create_key
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from monitor_app.store.models import AuditEntry


class LiveApi:
    def __init__(self, store, tmp_path, **settings):
        from api import create_app

        self.store = store
        conf = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml", **settings)
        self.rt = Runtime(conf, sender=lambda *a: None)
        self.rt.__dict__["store"] = store
        self.keys = {}
        with store.session() as s:
            for role in ("viewer", "operator", "admin"):
                self.keys[role] = create_key(s, name=role, role=role)[1]
        self.server = make_server("127.0.0.1", 0, create_app(self.rt), threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def call(self, method: str, path: str, *, role: str | None = None, body=None, source: str = "127.0.0.1"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        headers = {"Content-Type": "application/json"}
        if role:
            headers["X-API-Key"] = self.keys[role]
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def rows(self, **match):
        with self.store.session() as s:
            rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def live_api(store, tmp_path):
    api = LiveApi(store, tmp_path, audit_anonymous_per_minute=3, public_status_page=False)
    yield api
    api.close()


def test_it_audits_refused_reads_on_any_endpoint(live_api):
    assert live_api.call("GET", "/api/v1/assets")[0] == 401
    assert live_api.call("GET", "/api/v1/audit", role="viewer")[0] == 403
    assert live_api.call("GET", "/")[0] == 302  # the status page, when it is not public: to the login page

    anonymous = live_api.rows(actor="anonymous", action="GET /api/v1/assets")
    assert [(r.outcome, r.target, r.remote_addr, r.detail["status"], r.detail["reason"]) for r in anonymous] == \
        [("denied", "/api/v1/assets", "127.0.0.1", 401, "no key")]
    assert [(r.outcome, r.detail["status"]) for r in live_api.rows(action="GET /")] == [("denied", 302)]
    viewer = live_api.rows(actor="key:viewer", action="GET /api/v1/audit")
    assert [(r.outcome, r.detail["needed_role"], r.detail["had_role"]) for r in viewer] == \
        [("denied", "admin", "viewer")]


def test_it_audits_an_action_that_fails(live_api):
    status, _ = live_api.call("POST", "/api/v1/alerts/incidents/987654/acknowledge", role="operator")
    assert status == 404
    rows = live_api.rows(actor="key:operator", outcome="invalid")
    assert [(r.action, r.target, r.detail["status"]) for r in rows] == \
        [("POST /api/v1/alerts/incidents/<int:incident_id>/acknowledge", "/api/v1/alerts/incidents/987654/acknowledge",
          404)]


def test_it_audits_an_action_whose_transaction_rolled_back(live_api, store):
    # The action's own table is gone: its insert raises and its transaction rolls back.
    with store.sql_engine.begin() as conn:
        conn.execute(text("DROP TABLE alert_rules"))
    rule = {"name": "disk-full", "kind": "threshold", "metric": "host.disk_percent", "op": ">", "value": 90}
    status, _ = live_api.call("POST", "/api/v1/alerts/rules", role="admin", body=rule)
    assert status == 500
    rows = live_api.rows(actor="key:admin", action="POST /api/v1/alerts/rules")
    assert [(r.outcome, r.detail["status"]) for r in rows] == [("error", 500)]


def test_it_caps_keyless_requests_per_source_address(live_api):
    for _ in range(10):
        assert live_api.call("POST", "/api/v1/scans", body={"kind": "host"}, source="127.0.0.2")[0] == 401
    for _ in range(2):
        assert live_api.call("POST", "/api/v1/scans", body={"kind": "host"}, source="127.0.0.3")[0] == 401

    flood = live_api.rows(remote_addr="127.0.0.2")
    assert [r.action for r in flood] == ["POST /api/v1/scans"] * 3 + ["anonymous.suppressed"]
    summary = flood[-1]
    assert (summary.actor, summary.outcome, summary.detail["suppressed"], summary.detail["limit"]) == \
        ("anonymous", "denied", 7, 3)
    assert [r.action for r in live_api.rows(remote_addr="127.0.0.3")] == ["POST /api/v1/scans"] * 2


def test_it_caps_forged_acknowledge_links_like_any_keyless_request(live_api):
    for _ in range(6):
        assert live_api.call("POST", "/api/v1/alerts/ack/forged.token", source="127.0.0.4")[0] == 400
    rows = live_api.rows(remote_addr="127.0.0.4")
    assert [(r.action, r.outcome) for r in rows] == [("incident.acknowledge", "denied")] * 3 + \
        [("anonymous.suppressed", "denied")]
    assert rows[-1].detail["suppressed"] == 3


def test_it_still_answers_when_the_audit_trail_cannot_be_written(live_api, store):
    with store.sql_engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_anonymous_windows"))
    assert live_api.call("GET", "/api/v1/assets", source="127.0.0.5")[0] == 401


# -- the CLI records the OS user, and its failures ---------------------------------------------

def _os_actor() -> str:
    return f"cli:{pwd.getpwuid(os.getuid()).pw_name} (uid {os.getuid()})"


@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_it_records_the_os_user_for_cli_actions_that_succeed_or_fail(deployment):
    created = deployment.cli("apikey", "create", "--role", "viewer", "--name", "ci")
    assert created.returncode == 0, created.stderr
    failed = deployment.cli("alerts", "ack", "424242")
    assert failed.returncode != 0 and "Traceback" not in failed.stderr

    with deployment.runtime.store.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.actor, r.action, r.outcome) for r in rows] == [
        (_os_actor(), "apikey.create", "ok"),
        (_os_actor(), "incident.acknowledge", "invalid"),
    ]
    assert "424242" in rows[1].detail["error"]
