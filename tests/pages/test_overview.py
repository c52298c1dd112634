"""The Overview page: assets with history bars, filters from the query string, open incidents,
recent changes; and what signed-out visitors get."""

from __future__ import annotations

import re
from datetime import timedelta

from monitor_app.assets import lifecycle
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset


def seed(store) -> dict[str, int]:
    specs = [("orders-db", "postgresql", {"env": "prod", "team": "shop"}, "up"),
             ("reports-db", "postgresql", {"env": "dev"}, "down"),
             ("cache-file", "sqlite", {"env": "prod"}, "up"),
             ("vault-db", "postgresql", {"env": "prod", "api_token": "s3cr3t-t0ken"}, "stopped")]
    ids = {}
    with store.session() as s:
        for name, engine, labels, status in specs:
            a = Asset(kind="database", engine=engine, name=name, source="config", external_id=name, labels=labels,
                      connection={}, details={"probe": {"latency_ms": 3.2}}, status="up",
                      created_at=utcnow() - timedelta(days=20))
            s.add(a)
            s.flush()
            ids[name] = a.id
            if status == "down":
                lifecycle.fail(s, a, f"{name} is unreachable: <script>alert(1)</script>",
                               observed_at=utcnow() - timedelta(days=2))
            elif status == "stopped":
                lifecycle.stop(s, a, f"{name} stopped on request")
        record_event(s, type="schema.changed", severity="warning", asset_id=ids["orders-db"],
                     summary="orders-db: table orders column note dropped")
        record_event(s, type="metrics.pg_fast.check_failed", severity="warning", asset_id=ids["orders-db"],
                     summary="not a change: left out of recent changes")
    return ids


def names_in(page: str) -> set[str]:
    return set(re.findall(r'<tr data-asset-id="\d+">\s*<th scope="row">([a-z-]+)', page))


def test_it_lists_assets_changes_and_filters_by_label_engine_and_status(pages, store):
    ids = seed(store)
    b = pages.browser("viewer")
    page = b.get("/").get_data(as_text=True)
    assert names_in(page) == {"orders-db", "reports-db", "cache-file", "vault-db"}
    assert "1 asset(s) down" in page
    assert "orders-db: table orders column note dropped" in page and "schema.changed" in page
    assert "not a change" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "s3cr3t-t0ken" not in page and "api_token=[redacted]" in page
    assert names_in(b.get("/?label=env=prod").get_data(as_text=True)) == {"orders-db", "cache-file", "vault-db"}
    assert names_in(b.get("/?label=team").get_data(as_text=True)) == {"orders-db"}
    assert names_in(b.get("/?engine=sqlite").get_data(as_text=True)) == {"cache-file"}
    assert names_in(b.get("/?status=down").get_data(as_text=True)) == {"reports-db"}
    both = b.get("/?label=env%3Dprod&engine=postgresql&status=stopped").get_data(as_text=True)
    assert names_in(both) == {"vault-db"}
    assert "stopped on request" in both and "column note dropped" not in both  # changes follow the filter
    assert names_in(b.get("/?label=api_token=s3cr3t-t0ken").get_data(as_text=True)) == set()  # no oracle
    assert len(names_in(b.get("/?status=exploded").get_data(as_text=True))) == 4  # unknown value: no filter
    assert f'data-asset-id="{ids["reports-db"]}"' in page


def test_the_history_bar_shows_the_days_an_asset_was_down(pages, store):
    ids = seed(store)
    page = pages.browser("viewer").get("/").get_data(as_text=True)
    row = page.split(f'<tr data-asset-id="{ids["reports-db"]}">', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<rect class="h-(\w+)"[^>]*data-day="([\d-]+)"', row)
    assert len(cells) == 90
    today = utcnow().date()
    by_day = {day: status for status, day in cells}
    assert by_day[str(today)] == "down" and by_day[str(today - timedelta(days=2))] == "down"
    assert by_day[str(today - timedelta(days=3))] == "up" and by_day[str(today - timedelta(days=30))] == "none"
    assert 'aria-label="90-day history' in row


def test_open_incidents_are_listed_open_first(pages, store):
    from monitor_app.store.models.alerting import Incident

    with store.session() as s:
        for key, status in (("a", "acknowledged"), ("b", "open"), ("c", "resolved")):
            s.add(Incident(group_key=key, title=f"incident {key}", severity="page", status=status))
    page = pages.browser("viewer").get("/").get_data(as_text=True)
    section = page.split('id="incidents"', 1)[1].split("</table>", 1)[0]
    assert section.index("incident b") < section.index("incident a") and "incident c" not in section


def test_signed_out_visitors_get_the_summary_without_names_or_the_login_page(make_pages, store):
    public = make_pages()
    seed(store)
    page = public.browser(role=None).get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "1 asset(s) down" in text
    for leak in ("orders-db", "reports-db", "schema.changed", "unreachable", "data-live-url"):
        assert leak not in text, leak
    closed = make_pages(public_status_page=False)
    refused = closed.browser(role=None).get("/")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert "orders-db" in closed.browser("viewer").get("/").get_data(as_text=True)
