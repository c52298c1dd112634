"""Flower behind the pages' login: the dbmon session cookie opens it for operators."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from api.web.session_auth import session_key
from monitor_app.access.api_keys import create_key, revoke
from monitor_app.config.settings import get_settings
from monitor_app.store.models import ApiKey
from tests.pages.conftest import Browser
from workers.flower_guard import FlowerAccess, _session_cookie


def session_cookie(browser) -> str:
    return browser.client.get_cookie("dbmon_session").value


def test_an_operator_session_opens_flower_and_a_viewer_session_does_not(pages, store):
    access = FlowerAccess(store, [], session_secret=session_key(pages.rt.settings))
    operator, viewer = session_cookie(pages.browser("operator")), session_cookie(pages.browser("viewer"))
    assert access.check(None, None, operator) == 200
    assert access.check(None, None, viewer) == 403
    assert access.check(None, None, None) == 401
    assert access.check(None, None, operator[:-2] + ("AA" if not operator.endswith("AA") else "BB")) == 401
    assert access.check(None, None, "x" * 10_000) == 401
    assert access.check(None, pages.keys["viewer"], operator) == 403  # a key sent along decides
    other_secret = FlowerAccess(store, [], session_secret=b"another deployment's key")
    assert other_secret.check(None, None, operator) == 401
    expired = FlowerAccess(store, [], session_secret=session_key(pages.rt.settings), session_hours=-1)
    assert expired.check(None, None, operator) == 401
    with store.session() as s:
        revoke(s, s.scalar(select(ApiKey.id).where(ApiKey.name == "operator-key")))
    assert access.check(None, None, operator) == 401


def test_without_a_secret_given_it_derives_the_pages_key_from_the_settings(pages, store, monkeypatch, tmp_path):
    """As `dbmon flower` builds it: the key comes from the process's settings (DBMON_SECRET_KEY)."""
    monkeypatch.setenv("DBMON_DATA_DIR", str(tmp_path))
    cookie = session_cookie(pages.browser("operator"))
    try:
        for secret, expected in (("pages-test-key", 200), ("another key", 401)):
            monkeypatch.setenv("DBMON_SECRET_KEY", secret)
            get_settings.cache_clear()
            assert FlowerAccess(store, []).check(None, None, cookie) == expected
    finally:
        get_settings.cache_clear()


def test_the_guard_reads_the_cookie_from_the_tornado_request():
    def request(cookie: str | None) -> HTTPServerRequest:
        return HTTPServerRequest(start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
                                 headers=HTTPHeaders({"Host": "127.0.0.1", **({"Cookie": cookie} if cookie else {})}))

    assert _session_cookie(request("a=1; dbmon_session=eyJr.Zz.Yy; b=2")) == "eyJr.Zz.Yy"
    assert _session_cookie(request("a=1")) is None and _session_cookie(request(None)) is None
    assert _session_cookie(request('dbmon_session="\\x"; ;;=')) == "x"  # malformed: parsed, not a crash


@pytest.mark.slow
@pytest.mark.deployment
def test_a_real_flower_accepts_the_page_session_cookie(tmp_path):
    from api import create_app
    from tests.harness import Deployment, wait_for
    from tests.services import free_port

    d = Deployment("embedded", tmp_path)
    try:
        d.migrate()
        port = free_port()
        d.start("flower", "flower", "--port", str(port))
        with d.runtime.store.session() as s:
            keys = {role: create_key(s, name=role, role=role)[1] for role in ("operator", "viewer")}
        app = create_app(d.runtime)
        cookies = {}
        for role, key in keys.items():
            b = Browser(app)
            assert b.login(key).status_code == 302
            cookies[role] = session_cookie(b)
        base = f"http://127.0.0.1:{port}"

        def status(cookie: str | None) -> int | None:
            try:
                jar = {"dbmon_session": cookie} if cookie else {}
                return requests.get(base + "/api/workers", cookies=jar, timeout=5).status_code
            except requests.RequestException:
                return None

        wait_for(lambda: status(None) is not None, 60, 0.2, what="Flower")
        assert status(None) == 401
        assert status(cookies["viewer"]) == 403
        assert status(cookies["operator"]) == 200
        refused = requests.post(base + "/api/task/async-apply/assets.sync_config", json={}, timeout=5,
                                cookies={"dbmon_session": cookies["operator"]})
        assert refused.status_code == 403 and "read-only" in refused.json()["message"]
    finally:
        d.close()
