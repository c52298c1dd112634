"""The pages in a real headless Chromium against a running deployment: sign in through the form,
a live update without reload, an incident acknowledged from its page, keyboard reachability and
labelled controls. Screenshots of each page go to DBMON_SCREENSHOT_DIR (default: the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from tests.harness import wait_for
from tests.services import free_port, missing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
# Every visible form control must have a name a screen reader can say.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !el.getAttribute('aria-label') && !(el.id && document.querySelector(`label[for="${el.id}"]`)))
  .map(el => el.outerHTML)"""
FOCUSED = """() => { const el = document.activeElement;
  return el ? (el.id || el.getAttribute('href') || el.textContent.trim()).slice(0, 60) : null }"""


def config(webhook_url: str) -> str:
    return yaml.safe_dump({
        "assets": [{"name": "billing-db", "engine": "postgresql", "host": "127.0.0.1", "database": "postgres",
                    "user": "postgres", "insecure": True}],
        "alerting": {
            "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "severity": "page"}],
            "channels": {"ops": {"type": "webhook", "allow_private_targets": True, "url": webhook_url}},
            "route": {"channels": ["ops"]},
            "escalation_policies": {"oncall": {"severities": ["page"], "steps": [{"after": "10m", "channels": ["ops"]}]}},
        }})


def tab_until(page, target: str, limit: int = 80) -> list[str]:
    """Press Tab from the top of a freshly loaded page until `target` has focus; what had focus on the way."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
        if seen[-1] == target:
            return seen
    raise AssertionError(f"Tab never reached {target!r}; focus went through {seen}")


@pytest.mark.browser
@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_sign_in_live_update_acknowledge_and_keyboard(deployment, tmp_path):
    if not shutil.which("chromium"):
        missing("chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    from monitor_app.access.api_keys import create_key
    from monitor_app.assets import lifecycle
    from monitor_app.platform.event_log import record_event
    from monitor_app.store.models import Asset
    from monitor_app.store.models.alerting import EscalationState, Incident
    from tests.alerting.peers import HttpReceiver

    shots = Path(os.environ.get("DBMON_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    receiver = HttpReceiver()
    port = free_port()
    deployment.env["DBMON_API_PORT"] = str(port)
    deployment.write_config(config(receiver.url()))
    deployment.start_worker()
    assert deployment.scan("assets.sync_config").status == "done"
    store = deployment.runtime.store
    with store.session() as s:
        asset_id = s.scalar(select(Asset.id).where(Asset.name == "billing-db"))
        key = create_key(s, name="browser-operator", role="operator")[1]
    wait_for(lambda: _status(store, asset_id) == "up", 30, what="asset up")
    deployment.start("api", "api", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            wait_for(lambda: _try_goto(page, base + "/login"), 30, interval=0.3, what="login page served")
            assert page.evaluate(UNLABELLED) == []
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/")
            row = page.locator(f"#assets tr[data-asset-id='{asset_id}']")
            expect(row.locator("[data-field=status]")).to_have_text("up")
            assert row.locator(".history rect").count() == 90
            assert page.get_by_role("link", name="Overview").get_attribute("aria-current") == "page"
            assert page.evaluate(UNLABELLED) == []
            expect(page.locator("#live-state")).to_have_text("Live updates: on", timeout=15_000)
            page.screenshot(path=str(shots / "overview.png"), full_page=True)

            # Pushed while the page stays loaded: a marker set now survives only without a reload.
            page.evaluate("""() => { window.__marker = 'same page'; window.__statuses = [];
              const cell = document.querySelector('#assets tr[data-asset-id="%d"] [data-field=status]');
              new MutationObserver(() => window.__statuses.push(cell.textContent))
                .observe(cell, {childList: true, characterData: true, subtree: true}); }""" % asset_id)
            with store.session() as s:
                change = record_event(s, type="schema.changed", severity="warning", asset_id=asset_id,
                                      summary="billing-db: table <b>invoices</b> column memo added").id
                lifecycle.fail(s, s.get(Asset, asset_id), "billing-db is unreachable: injected by the test")
            live_row = page.locator(f"#events tr[data-event-id='{change}']")
            expect(live_row).to_contain_text("table <b>invoices</b> column memo added", timeout=15_000)
            expect(row.locator("[data-field=status]")).to_have_text("down", timeout=15_000)
            expect(page.locator("#overall")).to_have_text("1 asset(s) down")
            assert page.evaluate("window.__marker") == "same page" and "down" in page.evaluate("window.__statuses")
            page.screenshot(path=str(shots / "overview-live.png"), full_page=True)

            # The asset.down above went through the worker's alert evaluation: an incident.
            incident_id = wait_for(lambda: _incident(store), 30, what="incident opened")
            focus = tab_until(page, "/incidents")
            assert focus[:4] == ["#main", "/", "/inventory", "/incidents"]  # the skip link, then the nav
            page.keyboard.press("Enter")
            page.wait_for_url(base + "/incidents")
            assert page.get_by_role("link", name="Incidents").get_attribute("aria-current") == "page"
            assert page.evaluate(UNLABELLED) == []
            page.screenshot(path=str(shots / "incidents.png"), full_page=True)
            page.locator(f"a[href='/incidents/{incident_id}']").first.click()
            page.wait_for_url(f"{base}/incidents/{incident_id}")
            expect(page.locator("#timeline")).to_contain_text("Incident opened")
            expect(page.locator("#escalation")).to_contain_text("oncall: active")
            assert page.evaluate(UNLABELLED) == []
            page.screenshot(path=str(shots / "incident.png"), full_page=True)
            tab_until(page, "ack")
            page.keyboard.press("Enter")  # submits the acknowledge form, CSRF token included
            expect(page.locator("#incident-status")).to_have_text("acknowledged")
            expect(page.locator("#timeline")).to_contain_text("Acknowledged by key:browser-operator")
            page.screenshot(path=str(shots / "incident-acknowledged.png"), full_page=True)
            with store.session() as s:
                state = s.scalar(select(EscalationState).where(EscalationState.incident_id == incident_id))
                assert (state.status, state.stopped_reason) == ("stopped", "acknowledged")
                assert s.get(Incident, incident_id).acknowledged_by == "key:browser-operator"

            page.get_by_role("link", name="Inventory").click()
            page.wait_for_url(base + "/inventory")
            expect(page.locator("#inventory")).to_contain_text("billing-db")
            page.screenshot(path=str(shots / "inventory.png"), full_page=True)
            browser.close()
    finally:
        receiver.stop()
    for name in ("overview", "overview-live", "incidents", "incident", "incident-acknowledged", "inventory"):
        assert (shots / f"{name}.png").stat().st_size > 5000, name


def _status(store, asset_id):
    from monitor_app.store.models import Asset

    with store.session() as s:
        return s.get(Asset, asset_id).status


def _incident(store):
    from monitor_app.store.models.alerting import Incident

    with store.session() as s:
        return s.scalar(select(Incident.id).where(Incident.status == "open"))


def _try_goto(page, url):
    try:
        return page.goto(url).ok
    except Exception:  # noqa: BLE001 - not up yet
        return False
