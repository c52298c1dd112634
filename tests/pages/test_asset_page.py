"""The asset page and its charts' JSON on each store backend: downsampled ranges, overlays, schema,
files, lifecycle, alerts, escaping, and who may see it."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest
import yaml

from monitor_app.access.api_keys import create_key
from monitor_app.assets.config_assets import sync_config_assets
from monitor_app.config.settings import load_settings
from monitor_app.files import watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.metrics import chunk_codec
from monitor_app.metrics.chunk_codec import Bucket
from monitor_app.metrics.rollup import ROLLUPS, floor_time
from monitor_app.metrics.sample_store import SeriesSample, SeriesWriter, compact, labels_key
from monitor_app.platform.runtime import Runtime
from monitor_app.schema.check import run_check
from monitor_app.status.chart_catalogue import format_value
from monitor_app.status.chart_data import MAX_POINTS, MAX_SERIES_PER_CHART, RANGES
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, Event, MetricChunk, MetricSeries
from monitor_app.store.models.alerting import Alert, Incident
from monitor_app.store.models.analysis import MetricAnomaly

HOSTILE = '<script>alert("x")</script>'
FORECAST_RULE = {"name": "FileOutgrowsDisk", "kind": "forecast", "metric": "sqlite.file_bytes", "threshold": 5800,
                 "lead_time": "24h", "window": "1h", "severity": "warning"}
TIERS = {"1h": "raw", "24h": "1m", "7d": "10m", "30d": "1h", "90d": "1h"}


class Node:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    @property
    def text(self) -> str:
        return " ".join(" ".join([*self.parts, *(c.text for c in self.children)]).split())

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def find(self, tag: str, cls: str | None = None, **attrs) -> list[Node]:
        out = []
        for c in self.children:
            if c.tag == tag and (cls is None or cls in c.classes()) and \
                    all(c.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(c)
            out.extend(c.find(tag, cls, **attrs))
        return out


class Tree(HTMLParser):
    """Just enough of a DOM to ask which elements a page has, with what classes and text."""

    VOID = {"br", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.root = Node("root", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


class AssetPages:
    def __init__(self, store, tmp_path, config: dict):
        from api import create_app

        (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump(config))
        settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url,
                                 secret_key="asset-page-test", config_file=tmp_path / "dbmon.yaml")
        self.rt = Runtime(settings, sender=lambda *a: None)
        self.rt.__dict__["store"] = store
        self.store, self.tmp = store, tmp_path
        self.client = create_app(self.rt).test_client()
        with store.session() as s:
            self.key = create_key(s, name="viewer", role="viewer")[1]

    def add_asset(self, name: str, engine: str = "postgresql", **fields) -> int:
        with self.store.session() as s:
            asset = Asset(kind="database", engine=engine, name=name, source="config", external_id=name,
                          labels=fields.pop("labels", {}), connection=fields.pop("connection", {"host": "db"}),
                          details={}, status="up", **fields)
            s.add(asset)
            s.flush()
            return asset.id

    def page(self, asset_id: int, expect: int = 200, **params) -> str:
        resp = self.client.get(f"/assets/{asset_id}", query_string=params, headers={"X-API-Key": self.key})
        assert resp.status_code == expect, (resp.status_code, resp.get_data(as_text=True)[:400])
        return resp.get_data(as_text=True)

    def charts(self, asset_id: int, metrics: list[str], rng: str, expect: int = 200):
        resp = self.client.get(f"/assets/{asset_id}/series.json", query_string={"range": rng, "metric": metrics},
                               headers={"X-API-Key": self.key})
        assert resp.status_code == expect, (resp.status_code, resp.get_data(as_text=True)[:400])
        return resp.json


@pytest.fixture()
def site(store, tmp_path):
    pages = AssetPages(store, tmp_path, {"alerting": {"rules": [FORECAST_RULE]}})
    yield pages
    pages.rt.close()


def series(store, asset_id: int, name: str, labels: dict | None = None) -> int:
    with store.session() as s:
        row = MetricSeries(asset_id=asset_id, name=name, labels=labels or {}, labels_key=labels_key(labels or {}))
        s.add(row)
        s.flush()
        return row.id


def packed_history(store, series_id: int, now: datetime, until: datetime, value) -> None:
    """Rollup chunks as compaction leaves them, up to `until`: 1-minute buckets for 2 days,
    10-minute ones for 8, hourly ones for 91 (each range reads one tier, and only so far back)."""
    kept = {"1m": timedelta(days=2), "10m": timedelta(days=8), "1h": timedelta(days=91)}
    with store.session() as s:
        for tier in ROLLUPS:
            chunk = floor_time(now - kept[tier.name], tier.chunk_span)
            while chunk < until:
                buckets, t = [], chunk
                while t < min(chunk + tier.chunk_span, until):
                    v = value(t)
                    buckets.append(Bucket(t, v - 1, v + 1, 4 * v, v, 4))
                    t += tier.width
                s.add(MetricChunk(series_id=series_id, tier=tier.name, start=chunk, end_at=buckets[-1].start,
                                  count=4 * len(buckets), payload=chunk_codec.encode_buckets(chunk, buckets)))
                chunk += tier.chunk_span


def hours_ago(now: datetime):
    return lambda t: 1000.0 + (t - now).total_seconds() / 3600


def test_every_range_is_downsampled_to_at_most_1000_points_over_its_own_window(site, store):
    asset_id = site.add_asset("orders")
    now = utcnow()
    tps = series(store, asset_id, "pg.transactions_per_second")
    previous_hour = floor_time(now, timedelta(hours=1)) - timedelta(hours=1)
    packed_history(store, tps, now, previous_hour, hours_ago(now))
    # A sample every 2 s since the start of the previous hour (1,800 in any hour): compaction packs
    # the previous hour into a raw chunk and the rollups, the current one is still rows.
    samples = int((now - previous_hour).total_seconds() // 2)
    SeriesWriter(store).write([SeriesSample(asset_id, "pg.transactions_per_second", hours_ago(now)(at), at)
                               for k in range(samples) if (at := previous_hour + timedelta(seconds=2 * k)) < now])
    assert compact(store, now)["samples"] == 1800
    for key, rng in RANGES.items():
        [chart] = site.charts(asset_id, ["pg.transactions_per_second"], key)["charts"]
        times, avg = chart["times"], chart["series"][0]["avg"]
        assert chart["tier"] == TIERS[key] and chart["step"] == rng.step_seconds
        assert 0 < chart["points"] == len(times) == len(avg) <= MAX_POINTS
        assert chart["start"] % rng.step_seconds == 0 and rng.seconds <= chart["end"] - chart["start"] < rng.seconds + rng.step_seconds
        assert times[0] >= chart["start"] and times[-1] < chart["end"]
        assert all((b - a) % rng.step_seconds == 0 and b > a for a, b in zip(times, times[1:], strict=False))
        assert chart["points"] > 0.9 * rng.seconds / rng.step_seconds, (key, chart["points"])
        # The generated series rises by one per hour: each step's average is its time's value.
        first = hours_ago(now)(datetime.fromtimestamp(times[0], now.tzinfo))
        assert avg[0] == pytest.approx(first, abs=rng.step_seconds / 3600 + 1 / 60)
        assert all(b >= a - 1e-9 for a, b in zip(avg, avg[1:], strict=False))
        lows, highs = chart["series"][0]["min"], chart["series"][0]["max"]
        assert lows is not None and all(lo <= a <= hi for lo, a, hi in zip(lows, avg, highs, strict=True))
        assert chart["series"][0]["summary"]["max"] == pytest.approx(max(highs))


def test_the_range_picker_links_every_range_and_marks_the_current_one(site, store):
    asset_id = site.add_asset("orders")
    SeriesWriter(store).write([SeriesSample(asset_id, name, 7.0, utcnow())
                               for name in ("pg.connections", "pg.temp_bytes", "pg.xact_commit")])
    tree = Tree(site.page(asset_id, range="7d", metric="pg.temp_bytes")).root
    [picker] = tree.find("nav", cls="range-picker")
    links = picker.find("a")
    assert [a.attrs["data-range"] for a in links] == list(RANGES)
    assert [a.attrs["data-range"] for a in links if a.attrs.get("aria-current") == "true"] == ["7d"]
    for a in links:  # the range is in the address, and an added chart stays when it changes
        assert f"range={a.attrs['data-range']}" in a.attrs["href"] and "metric=pg.temp_bytes" in a.attrs["href"]
    figures = tree.find("figure", cls="asset-chart")
    assert {f.attrs["data-metric"]: f.attrs["data-range"] for f in figures} == {"pg.connections": "7d",
                                                                                "pg.temp_bytes": "7d"}
    assert all(f.find("div", cls="chart-canvas", role="img")[0].attrs["aria-label"] for f in figures)
    [select] = tree.find("select", id="add-metric")
    assert tree.find("label", **{"for": "add-metric"})
    assert [o.attrs["value"] for o in select.find("option")] == ["pg.xact_commit"]  # the series not charted
    assert "7 days" in tree.find("table", cls="chart-summary")[0].text
    site.page(asset_id, expect=400, range="2h")
    site.charts(asset_id, ["pg.connections"], "1y", expect=400)


def test_anomaly_windows_and_a_forecast_are_drawn_where_the_data_has_them(site, store):
    asset_id = site.add_asset("app-db", engine="sqlite", connection={"path": "/srv/app.db"})
    now = utcnow().replace(microsecond=0)
    # 10 bytes more every minute for 3 hours: the rule's 1 h window sees 600 B/h of growth, and the
    # threshold is 5 h of growth above the last value.
    samples = [SeriesSample(asset_id, "sqlite.file_bytes", 1000.0 + 10 * m, now - timedelta(minutes=180 - m))
               for m in range(181)]
    samples += [SeriesSample(asset_id, "sqlite.wal_bytes", 0.0, now)]
    SeriesWriter(store).write(samples)
    with store.session() as s:
        file_bytes = s.query(MetricSeries).filter_by(name="sqlite.file_bytes").one().id
        for start, end in ((now - timedelta(minutes=50), now - timedelta(minutes=40)), (now - timedelta(minutes=8), None)):
            s.add(MetricAnomaly(rule="WorkloadAnomaly", kind="anomaly", series_id=file_bytes, asset_id=asset_id,
                                metric="sqlite.file_bytes", start=start, end_at=end, direction="up", score=9.5,
                                baseline=1200.0, peak=2700.0))
    day, hour = (site.charts(asset_id, ["sqlite.file_bytes", "sqlite.wal_bytes"], rng)["charts"] for rng in ("24h", "1h"))
    grows, flat = day
    windows = sorted((a["from"], a["to"]) for a in grows["anomalies"])
    assert windows == [(int((now - timedelta(minutes=50)).timestamp()), int((now - timedelta(minutes=40)).timestamp())),
                       (int((now - timedelta(minutes=8)).timestamp()), None)]
    [forecast] = grows["forecasts"]
    assert forecast["rule"] == "FileOutgrowsDisk" and forecast["hours_to_threshold"] == pytest.approx(5.0, abs=0.3)
    (t0, v0), (t1, v1) = forecast["line"]
    assert v0 == pytest.approx(2800, abs=15) and (t1, v1) == (forecast["eta"], 5800)
    assert flat["anomalies"] == [] and flat["forecasts"] == []
    # Over one hour the ETA is past the chart's reach: the line stops a quarter of the range on.
    (_, _), (cut, reached) = hour[0]["forecasts"][0]["line"]
    assert cut == pytest.approx(hour[0]["end"] + 900, abs=1) and v0 < reached < 5800
    tree = Tree(site.page(asset_id)).root
    [figure] = [f for f in tree.find("figure", cls="asset-chart") if f.attrs["data-metric"] == "sqlite.file_bytes"]
    notes = figure.find("li", cls="anomaly")
    assert len(notes) == 2 and "still open" in notes[0].text + notes[1].text
    assert "FileOutgrowsDisk: reaches 5.66 KiB in about" in figure.find("li", cls="forecast")[0].text


def test_a_schema_change_set_shows_each_change_with_its_risk_and_context(site, store, tmp_path):
    path = tmp_path / "app.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, body TEXT)")
    asset_id = site.add_asset("app-db", engine="sqlite", connection={"path": str(path)})
    assert run_check(site.rt, asset_id)["baseline"]
    db.execute("ALTER TABLE users ADD COLUMN nickname TEXT")
    db.execute("DROP TABLE audit")
    db.close()
    outcome = run_check(site.rt, asset_id, {"source": "manual", "users": ["alice"], "application_names": ["migrate.py"],
                                            "command_tags": ["ALTER TABLE", "DROP TABLE"],
                                            "attribution": {"by": "server", "ended_sessions": 2}})
    assert outcome["changed"]
    tree = Tree(site.page(asset_id)).root
    [change_set] = tree.find("li", cls="change-set")
    assert f"risk-{outcome['max_risk']}" in change_set.classes()
    assert "alice" in change_set.text and "migrate.py" in change_set.text and "DROP TABLE" in change_set.text
    assert "2 sending sessions had ended" in change_set.text
    rows = {r.find("code")[0].text: r for r in change_set.find("tr", cls="change")}
    assert set(rows) == {"main.audit", "main.users.nickname"}, set(rows)
    dropped = rows["main.audit"]
    assert "removed" in dropped.text and f"risk-{dropped.attrs['data-risk']}" in dropped.classes()
    assert dropped.attrs["data-risk"] == outcome["max_risk"]  # dropping a table is the worst change here
    added = rows["main.users.nickname"]
    assert "added" in added.text and any("TEXT" in ins.text.upper() for ins in added.find("ins")), added.text


def test_file_changes_of_the_assets_watches_are_listed(site, store, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "postgresql.conf").write_text("shared_buffers = 128MB\n")
    sqlite3.connect(tmp_path / "app.db").close()
    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump({
        "assets": [{"name": "app-db", "engine": "sqlite", "path": str(tmp_path / "app.db")}],
        "watch": [{"path": str(etc), "kinds": ["config"], "asset": "app-db"}]}))
    with store.session() as s:
        sync_config_assets(s, site.rt.config, site.rt.credentials)
        asset_id = s.query(Asset).filter_by(name="app-db").one().id
    watches = watch_sync.sync(site.rt)["baseline"]
    for watch_id in watches:
        run_scan(site.rt, watch_id, reason="baseline")
    (etc / "postgresql.conf").write_text("shared_buffers = 256MB\n")
    for watch_id in watches:
        run_scan(site.rt, watch_id, reason="rescan")
    tree = Tree(site.page(asset_id)).root
    assert any(str(etc) in row.text for row in tree.find("table", id="watches")[0].find("tr"))
    [change] = tree.find("tr", cls="file-change")
    assert "config_changed" in change.text and "postgresql.conf" in change.text
    assert "shared_buffers" in change.text and "128MB" in change.find("del")[0].text
    assert "256MB" in change.find("ins")[0].text


def test_lifecycle_events_alerts_and_incidents_open_first(site, store):
    asset_id = site.add_asset("orders")
    other = site.add_asset("billing")
    now = utcnow()
    with store.session() as s:
        for minutes, type_ in ((30, "asset.registered"), (20, "container.die"), (19, "asset.down"),
                               (5, "container.start"), (4, "schema.changed")):
            s.add(Event(type=type_, severity="info", asset_id=asset_id, summary=f"{type_} happened",
                        detected_at=now - timedelta(minutes=minutes), observed_at=now - timedelta(minutes=minutes)))
        s.add(Event(type="container.oom", asset_id=other, summary="other asset", detected_at=now, observed_at=now))
        closed = Incident(group_key="g1", title="Old outage", status="resolved", opened_at=now - timedelta(days=2))
        live = Incident(group_key="g2", open_key="g2", title="Orders down", status="open", opened_at=now - timedelta(hours=3))
        s.add_all([closed, live])
        s.flush()
        s.add_all([Alert(fingerprint="a" * 32, rule="AssetDown", state="resolved", severity="page", asset_id=asset_id,
                         incident_id=closed.id, last_seen_at=now, annotations={"summary": "was down"}),
                   Alert(fingerprint="b" * 32, rule="AssetDown", state="firing", severity="page", asset_id=asset_id,
                         incident_id=live.id, last_seen_at=now - timedelta(hours=1), annotations={"summary": "is down"}),
                   Alert(fingerprint="c" * 32, rule="Other", state="firing", asset_id=other, last_seen_at=now)])
        live_id, closed_id = live.id, closed.id
    tree = Tree(site.page(asset_id)).root
    events = [r.find("code")[0].text for r in tree.find("table", id="lifecycle-events")[0].find("tr")[1:]]
    assert events == ["container.start", "asset.down", "container.die", "asset.registered"]
    incidents = tree.find("table", id="incidents")[0].find("a")
    assert [a.attrs["href"] for a in incidents] == [f"/incidents/{live_id}", f"/incidents/{closed_id}"]
    alerts = tree.find("table", id="asset-alerts")[0].find("tr")[1:]
    assert [("is down" in r.text, r.find("a")[0].attrs["href"]) for r in alerts] == [
        (True, f"/incidents/{live_id}"), (False, f"/incidents/{closed_id}")]


def test_values_from_monitored_systems_are_escaped_and_denied_labels_redacted(site, store, tmp_path):
    asset_id = site.add_asset(HOSTILE, labels={"team": "<img src=x onerror=alert(1)>", "api_token": "s3cr3t"})
    now = utcnow()
    SeriesWriter(store).write([SeriesSample(asset_id, "pg.locks", 3.0, now, {"mode": HOSTILE}),
                               SeriesSample(asset_id, "pg.locks", 1.0, now, {"mode": "RowExclusiveLock"})])
    with store.session() as s:
        s.add(Event(type="container.die", asset_id=asset_id, summary=HOSTILE, detected_at=now, observed_at=now))
    html = site.page(asset_id)
    assert "<script>alert" not in html and "<img src=x" not in html and "s3cr3t" not in html
    assert html.count("&lt;script&gt;alert(") >= 3  # the title, the heading, the series row, the event
    assert "api_token=[redacted]" in html
    embedded = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in embedded  # nothing in the data can close the script element
    [chart] = json.loads(embedded)["charts"]
    assert {s["label"] for s in chart["series"]} == {f"mode={HOSTILE}", "mode=RowExclusiveLock"}
    assert [s["summary"]["text"]["latest"] for s in chart["series"]] == ["3", "1"]


def test_a_metric_has_at_most_a_few_series_drawn_and_says_how_many_more(site, store):
    asset_id = site.add_asset("orders")
    now = utcnow()
    SeriesWriter(store).write([SeriesSample(asset_id, "pg.locks", float(i), now, {"mode": f"m{i:02d}"})
                               for i in range(MAX_SERIES_PER_CHART + 3)])
    [chart] = site.charts(asset_id, ["pg.locks"], "1h")["charts"]
    assert chart["hidden_series"] == 3 and len(chart["series"]) == MAX_SERIES_PER_CHART
    assert chart["series"][0]["label"] == f"mode=m{MAX_SERIES_PER_CHART + 2:02d}"  # the largest first
    site.charts(asset_id, ["pg.nothing"], "1h", expect=404)


def test_series_sampled_apart_share_one_time_axis_and_a_non_finite_sample_is_left_out(site, store):
    asset_id = site.add_asset("orders")
    now = utcnow().replace(microsecond=0) - timedelta(minutes=2)
    SeriesWriter(store).write(
        [SeriesSample(asset_id, "pg.replication_lag_seconds", 1.0 + k, now - timedelta(seconds=60 * k), {"standby": "a"})
         for k in range(3)]
        + [SeriesSample(asset_id, "pg.replication_lag_seconds", float("inf") if k == 1 else 5.0,
                        now - timedelta(seconds=60 * k + 30), {"standby": "b"}) for k in range(3)])
    resp = site.client.get(f"/assets/{asset_id}/series.json?range=1h&metric=pg.replication_lag_seconds",
                           headers={"X-API-Key": site.key})
    [chart] = json.loads(resp.get_data(as_text=True), parse_constant=pytest.fail)["charts"]  # no Infinity or NaN
    assert chart["points"] == 6 and chart["times"] == sorted(chart["times"])
    by_label = {s["label"]: s for s in chart["series"]}
    assert [v is None for v in by_label["standby=a"]["avg"]] == [True, False] * 3
    assert by_label["standby=b"]["avg"] == [5.0, None, None, None, 5.0, None]
    assert by_label["standby=b"]["summary"]["max"] == 5.0 and by_label["standby=a"]["summary"]["latest"] == 1.0


def test_unknown_assets_are_404_and_signed_out_browsers_are_sent_to_sign_in(site):
    asset_id = site.add_asset("orders")
    assert "There is no asset 999" in site.page(999, expect=404)
    site.page(2**70, expect=404)
    assert site.charts(999, ["pg.connections"], "1h", expect=404)["message"] == "no asset 999"
    site.charts(asset_id, [], "1h", expect=400)
    anonymous = site.client.get(f"/assets/{asset_id}?range=7d")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith(f"/login?next=/assets/{asset_id}")
    assert site.client.get(f"/assets/{asset_id}/series.json?metric=x").status_code == 302
    # Signed in through the form, the session opens the page and its JSON.
    token = re.search(r'name="csrf_token" value="([^"]+)"', site.client.get("/login").get_data(as_text=True)).group(1)
    signed_in = site.client.post(f"/login?next=/assets/{asset_id}", data={"api_key": site.key, "csrf_token": token})
    assert signed_in.headers["Location"] == f"/assets/{asset_id}"
    assert site.client.get(f"/assets/{asset_id}").status_code == 200


@pytest.mark.parametrize(("value", "unit", "text"), [
    (1536.0, "bytes", "1.5 KiB"), (2.5 * 2**30, "bytes_per_s", "2.5 GiB/s"), (0.9871, "ratio", "98.7 %"),
    (0.25, "seconds", "250 ms"), (5400.0, "seconds", "90 min"), (12345.6, "count", "12,346"), (None, "count", "no data"),
    (float("nan"), "percent", "no data"), (3.0, "per_s", "3/s")])
def test_figures_read_in_their_unit(value, unit, text):
    assert format_value(value, unit) == text

