"""Fixtures of the page tests: the real app on the `store` fixture (both backends), keys per role,
and a browser-like client that signs in through the login form and submits forms with their CSRF token."""

from __future__ import annotations

import re

import pytest
import yaml

from monitor_app.access.api_keys import create_key
from monitor_app.config.settings import load_settings
from monitor_app.platform.runtime import Runtime

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def alerting_config(webhook_url: str) -> dict:
    """AssetDown pages through a real webhook and escalates after 10 minutes (policy oncall)."""
    return {"alerting": {
        "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "resolve_on": ["asset.up"],
                   "severity": "page"}],
        "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_url}},
        "route": {"channels": ["ops"]},
        "escalation_policies": {"oncall": {"severities": ["page"], "steps": [{"after": "10m", "channels": ["ops"]}]}},
    }}


class Browser:
    """A Flask test client used the way a browser uses the pages: cookies kept, forms carry the token."""

    def __init__(self, app):
        self.client = app.test_client()

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path).get_data(as_text=True)
        found = CSRF.search(page)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, key: str):
        token = self.csrf("/login")
        return self.client.post("/login", data={"api_key": key, "csrf_token": token})

    def post(self, path: str, data: dict | None = None, token_from: str = "/", **kw):
        return self.client.post(path, data={**(data or {}), "csrf_token": self.csrf(token_from)}, **kw)

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)


class Pages:
    def __init__(self, rt, app, keys, dispatched):
        self.rt, self.app, self.keys, self.dispatched = rt, app, keys, dispatched

    def browser(self, role: str | None = "viewer") -> Browser:
        b = Browser(self.app)
        if role:
            assert b.login(self.keys[role]).status_code == 302
        return b


def build_pages(store, tmp_path, config: dict | None = None, **settings) -> Pages:
    from api import create_app

    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump(config or {}))
    loaded = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="pages-test-key",
                           config_file=tmp_path / "dbmon.yaml", **settings)
    dispatched: list = []
    rt = Runtime(loaded, sender=lambda name, kwargs, run_id, queue: dispatched.append((name, kwargs)))
    rt.__dict__["store"] = store
    keys = {}
    with store.session() as s:
        for role in ("viewer", "operator", "admin"):
            keys[role] = create_key(s, name=f"{role}-key", role=role)[1]
    return Pages(rt, create_app(rt), keys, dispatched)


@pytest.fixture()
def webhook_peer():
    from tests.alerting.peers import HttpReceiver

    peer = HttpReceiver()
    yield peer
    peer.stop()


@pytest.fixture()
def pages(store, tmp_path, webhook_peer):
    built = build_pages(store, tmp_path, alerting_config(webhook_peer.url()))
    yield built
    built.rt.close()


@pytest.fixture()
def make_pages(store, tmp_path):
    made: list[Pages] = []

    def build(**settings) -> Pages:
        built = build_pages(store, tmp_path, **settings)
        made.append(built)
        return built

    yield build
    for p in made:
        p.rt.close()
