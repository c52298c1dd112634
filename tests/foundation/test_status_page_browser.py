"""The status page in a real headless Chromium: the public summary signed out, the Overview with a key
(the pages' own tests, login form and live updates included, are in tests/pages)."""

from __future__ import annotations

import shutil

import pytest

from tests.harness import wait_for
from tests.services import free_port, missing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_it_renders_assets_host_charts_and_events_in_a_browser(deployment, tmp_path):
    if not shutil.which("chromium"):
        missing("chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    port = free_port()
    deployment.env["DBMON_API_PORT"] = str(port)
    deployment.write_config("assets:\n  - name: billing-db\n    engine: postgresql\n    host: 127.0.0.1\n"
                            "    database: postgres\n    user: postgres\n    insecure: true\n")
    deployment.start_worker()
    for task in ("assets.sync_config", "metrics.host_sample", "metrics.host_sample"):
        assert deployment.scan(task).status == "done"
    # The config sync probes what it registers at once.
    [asset_id] = [a.id for a in _assets(deployment)]
    wait_for(lambda: deployment.runtime.store and _status(deployment, asset_id) == "up", 30, what="asset up")
    deployment.start("api", "api", "--port", str(port))
    from monitor_app.access.api_keys import create_key

    with deployment.runtime.store.session() as s:
        key = create_key(s, name="browser", role="viewer")[1]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        public = browser.new_page()
        wait_for(lambda: _try_goto(public, f"http://127.0.0.1:{port}/"), 30, interval=0.3, what="page served")
        assert public.locator("#overall").inner_text().strip() == "All monitored assets reachable"
        assert "billing-db" not in public.content() and public.locator("#events").count() == 0
        up = sum(1 for a in _assets(deployment, source=None) if a.status == "up")  # billing-db and the host
        assert public.locator("#counts").inner_text().split() == ["Status", "Assets", "up", str(up)] and up == 2
        page = browser.new_page(extra_http_headers={"X-API-Key": key})
        wait_for(lambda: _try_goto(page, f"http://127.0.0.1:{port}/"), 30, interval=0.3, what="page served")
        row = page.locator(f"#assets tr[data-asset-id='{asset_id}']")
        assert "billing-db" in row.inner_text() and "up" in row.locator(".status-up").inner_text()
        assert page.locator("#overall").inner_text().strip() == "All monitored assets reachable"
        cpu = page.locator(".chart[data-metric='host.cpu_percent'] polyline").get_attribute("points")
        assert len(cpu.split()) == 2
        assert "asset.up" in page.locator("#events").inner_text()
        today = row.locator(".history rect").last
        assert row.locator(".history rect").count() == 90 and today.get_attribute("class") == "h-up"
        page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
        browser.close()
    assert (tmp_path / "status.png").stat().st_size > 5000


def _status(deployment, asset_id):
    from monitor_app.store.models import Asset

    with deployment.runtime.store.session() as s:
        return s.get(Asset, asset_id).status


def _try_goto(page, url):
    try:
        return page.goto(url).ok
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _assets(deployment, source: str | None = "config"):
    from sqlalchemy import select

    from monitor_app.store.models import Asset

    query = select(Asset) if source is None else select(Asset).where(Asset.source == source)
    with deployment.runtime.store.session() as session:
        return list(session.scalars(query))
