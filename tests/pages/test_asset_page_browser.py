"""The asset page in a real headless Chromium: charts of data a real collector stored, a range change
that redraws them, and the diff of a real schema change. Screenshots go to $DBMON_SCREENSHOT_DIR
(or the test's temporary directory)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from monitor_app.access.api_keys import create_key
from monitor_app.status.chart_catalogue import format_value
from monitor_app.store.models import Asset, MetricSeries
from tests.harness import wait_for
from tests.services import free_port, missing


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
def test_in_a_browser_charts_show_collected_data_follow_the_range_and_a_schema_diff_appears(deployment, tmp_path):
    if not shutil.which("chromium"):
        missing("chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("DBMON_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL, note TEXT)")
    port = free_port()
    deployment.env["DBMON_API_PORT"] = str(port)
    deployment.write_config(f"assets:\n  - name: shop-db\n    engine: sqlite\n    path: {path}\n")
    deployment.start_worker()
    assert deployment.scan("assets.sync_config").status == "done"
    with deployment.runtime.store.session() as s:
        asset_id = s.query(Asset).filter_by(name="shop-db").one().id
    assert deployment.scan("schema.check", {"asset_id": asset_id}).status == "done"  # the baseline
    for poll in range(3):  # the file grows between polls, each in its own 5 s step of the 1 h range
        db.executemany("INSERT INTO orders (total, note) VALUES (?, ?)", [(k, "x" * 300) for k in range(300)])
        assert deployment.scan("metrics.sqlite", {"asset_id": asset_id}).status == "done"
        if poll < 2:
            time.sleep(5.5)
    polled_size = path.stat().st_size
    db.execute("ALTER TABLE orders ADD COLUMN coupon TEXT")
    db.close()
    assert deployment.scan("schema.check", {"asset_id": asset_id}).status == "done"
    with deployment.runtime.store.session() as s:
        stored = s.query(MetricSeries).filter_by(asset_id=asset_id, name="sqlite.file_bytes").one().last_value
        key = create_key(s, name="browser", role="viewer")[1]
    assert stored == polled_size
    deployment.start("api", "api", "--port", str(port))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(extra_http_headers={"X-API-Key": key}, viewport={"width": 1280, "height": 1000})
        url = f"http://127.0.0.1:{port}/assets/{asset_id}"
        wait_for(lambda: _opened(page, url), 30, interval=0.3, what="asset page served")
        size = page.locator("figure.asset-chart[data-metric='sqlite.file_bytes']")
        size.locator(".chart-canvas canvas").first.wait_for()
        assert size.get_attribute("data-drawn") == "true" and size.get_attribute("data-range") == "24h"
        day_points = int(size.get_attribute("data-points"))
        assert 1 <= day_points < 3  # three polls within seconds share one or two 2-minute steps
        row = size.locator(".chart-summary tbody tr").first
        assert row.locator("td").first.inner_text() == format_value(polled_size, "bytes")
        page.screenshot(path=str(shots / "asset-24h.png"), full_page=True)

        page.locator(".range-picker a[data-range='1h']").click()
        page.wait_for_function("document.querySelector(\"figure[data-metric='sqlite.file_bytes']\")"
                               ".dataset.range === '1h'", timeout=10_000)
        assert int(size.get_attribute("data-points")) == 3
        assert "range=1h" in page.url and "1 hour" in size.locator(".chart-summary caption").inner_text()
        assert page.locator(".range-picker a[aria-current='true']").get_attribute("data-range") == "1h"
        assert size.locator(".chart-canvas canvas").count() >= 1
        size.screenshot(path=str(shots / "asset-chart-1h.png"))

        change_set = page.locator("#schema li.change-set").first
        assert change_set.is_visible() and "coupon" in change_set.inner_text()
        added = change_set.locator("tr.change", has_text="coupon")
        assert added.get_attribute("data-risk") in ("low", "medium", "high", "critical")
        assert "added" in added.inner_text()
        change_set.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "asset-schema.png"), full_page=True)
        browser.close()
    assert (shots / "asset-24h.png").stat().st_size > 10_000


def _opened(page, url: str) -> bool:
    try:
        return page.goto(url).ok
    except Exception:  # noqa: BLE001 - the API is not up yet
        return False
