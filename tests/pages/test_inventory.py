"""The Inventory page: sources, versions, TLS expiry, and the containers discovery left out, with why."""

from __future__ import annotations

import re
from datetime import timedelta

from monitor_app.containers.asset_upsert import upsert
from monitor_app.containers.identify import identify
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.posture import PostureState


def discover(store, *records: ContainerRecord) -> None:
    """What container discovery stores for each inspected container."""
    with store.session() as s:
        for r in records:
            upsert(s, r, identify(r))


def container(name: str, image: str, **kw) -> ContainerRecord:
    return ContainerRecord(id=(name.encode().hex() * 8)[:64], name=name, image=image, status="running", **kw)


def test_it_lists_ignored_containers_with_the_reasons(pages, store):
    discover(store,
             container("shop-db", "postgres:16.4", exposed_ports=[5432]),
             container("pg-metrics", "prometheuscommunity/postgres-exporter:v0.15.0", exposed_ports=[9187]),
             container("db-admin", "adminer:4"),
             container("legacy-pg", "postgres:12", labels={"dbmon.enable": "false"}),
             container("web", "nginx:1.27<script>", exposed_ports=[80]))
    page = pages.browser("viewer").get("/inventory").get_data(as_text=True)
    ignored = page.split('id="ignored"')[1].split("</table>")[0]
    rows = dict(re.findall(r'<tr data-container="([^"]+)">(.*?)</tr>', ignored, re.S))
    assert set(rows) == {"pg-metrics", "db-admin", "legacy-pg", "web"}
    assert "looks like a exporter, not a database" in rows["pg-metrics"] and "postgresql (0.00)" in rows["pg-metrics"]
    assert "is a database tool, not a database" in rows["db-admin"]
    assert "label dbmon.enable=false" in rows["legacy-pg"]
    assert "nginx:1.27&lt;script&gt;" in rows["web"] and "no database signal" in rows["web"]
    assets = page.split('id="inventory"')[1].split("</table>")[0]
    assert "shop-db" in assets and "<td>docker</td>" in assets and "16.4 <span class=\"note\">(image tag)" in assets


def test_versions_and_certificate_expiry_come_from_posture_probes_and_tls(pages, store):
    now = utcnow()
    soon, later = now + timedelta(days=9, hours=1), now + timedelta(days=200, hours=1)
    with store.session() as s:
        tls = {"10.0.0.5:5432": {"not_after": later.isoformat(), "subject": "CN=orders", "self_signed": False},
               "10.0.0.5:6432": {"not_after": soon.isoformat(), "subject": "CN=bouncer", "self_signed": True},
               "bad": {"not_after": "not a date"}}
        orders = Asset(kind="database", engine="postgresql", name="orders", source="docker", external_id="orders",
                       labels={}, connection={}, status="up",
                       details={"tls": tls, "probe": {"server_version": "16.1"}, "image": "postgres:16"})
        ledger = Asset(kind="database", engine="postgresql", name="ledger", source="config", external_id="ledger",
                       labels={"env": "prod"}, connection={}, status="down", details={"probe": {"server_version": "15.2"}})
        s.add_all([orders, ledger])
        s.flush()
        s.add(PostureState(asset_id=orders.id, server_version="16.3 (Debian 16.3-1)"))
    page = pages.browser("viewer").get("/inventory").get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-asset-id="\d+">\s*<th scope="row">(\w+)</th>(.*?)</tr>', page, re.S))
    assert "16.3 (Debian 16.3-1) <span class=\"note\">(posture)" in rows["orders"]
    assert "15.2 <span class=\"note\">(probe)" in rows["ledger"] and "env=prod" in rows["ledger"]
    certs = re.findall(r'<div class="cert cert-(\w+)">([^:]+:\d+): ([\d-]+)\s*\((\d+) days left(, self-signed)?',
                       rows["orders"])
    assert certs == [("expiring", "10.0.0.5:6432", soon.strftime("%Y-%m-%d"), "9", ", self-signed"),
                     ("ok", "10.0.0.5:5432", later.strftime("%Y-%m-%d"), "200", "")]
    assert "no TLS seen" in rows["ledger"]
