"""Signing in to the pages: the login form, logout, CSRF, revoked keys and roles on actions."""

from __future__ import annotations

from sqlalchemy import select

from monitor_app.access.api_keys import revoke
from monitor_app.store.models import ApiKey, AuditEntry


def test_the_login_form_opens_a_session_and_logout_ends_it(pages):
    b = pages.browser(role=None)
    assert b.get("/incidents").headers["Location"].startswith("/login?next=/incidents")
    assert b.login("dbm_not-a-key").status_code == 401
    signed_in = b.login(pages.keys["viewer"])
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    cookie = signed_in.headers["Set-Cookie"]
    assert "dbmon_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = b.get("/incidents")
    assert page.status_code == 200 and 'aria-current="page"' in page.get_data(as_text=True)
    assert b.post("/logout", token_from="/incidents").status_code == 302
    assert b.get("/incidents").status_code == 302


def test_a_post_without_the_session_csrf_token_is_refused(pages):
    b = pages.browser("operator")
    refused = b.client.post("/incidents/1/acknowledge", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    assert b.client.post("/incidents/1/acknowledge").status_code == 403
    other_site = b.post("/incidents/1/acknowledge", headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    with pages.rt.store.session() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
    assert len(denied) == 3 and all(d.actor == "key:operator-key" for d in denied)


def test_revoking_the_key_ends_its_sessions(pages):
    b = pages.browser("viewer")
    assert b.get("/inventory").status_code == 200
    with pages.rt.store.session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "viewer-key"))
        assert revoke(s, key_id)
    gone = b.get("/inventory")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/login")
    assert b.get("/live").status_code == 401


def test_a_viewer_may_look_but_not_act(pages):
    b = pages.browser("viewer")
    assert b.get("/incidents").status_code == 200
    page = b.post("/incidents/1/acknowledge", token_from="/incidents")
    assert page.status_code == 403 and "operator role" in page.get_data(as_text=True)
    assert b.post("/incidents/1/silence", {"matchers": "asset=x", "duration": "1h"},
                  token_from="/incidents").status_code == 403
