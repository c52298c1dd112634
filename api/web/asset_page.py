"""The asset page (`/assets/<id>`) and its charts' JSON (`/assets/<id>/series.json`).

The page renders everything server-side, chart data included (embedded as JSON, with each
chart's figures as text), so it reads whole without script; `charts.js` draws the charts and
redraws them from `series.json` when the range changes, keeping the range in the address. Both
are viewer pages: a session cookie or an `X-API-Key` header.

The range and the metrics come from the query string and are checked here: a range outside
`RANGES` or an over-long or NUL-bearing metric name is a 400 that names the parameter, an asset id
past 64 bits is simply not found (the API's request guard does the same for /api/v1).
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, jsonify, render_template, request
from markupsafe import Markup

from api.context import runtime
from api.request_guard import MAX_ID
from api.web.session_auth import page_role
from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.alerting.rules import load_rules
from monitor_app.config.last_good import ConfigUnavailable
from monitor_app.errors import NotFound
from monitor_app.status.asset_view import MAX_EXTRA_CHARTS, asset_page, charts_payload
from monitor_app.status.chart_data import DEFAULT_RANGE, RANGES, ChartRange
from monitor_app.store.base import utcnow

blueprint = Blueprint("asset_page", __name__)
MAX_METRIC_CHARS = 128
MAX_METRICS_PER_REQUEST = 24


def _bad_request(message: str):
    if request.path.endswith(".json"):
        return jsonify(message=message), 400
    return render_template("pages/asset_error.html", title="Bad request", message=message), 400


def _range() -> ChartRange | None:
    return RANGES.get(request.args.get("range") or DEFAULT_RANGE)


def _metrics(limit: int) -> list[str] | None:
    metrics = [m for m in request.args.getlist("metric") if m]
    if len(metrics) > limit or any(len(m) > MAX_METRIC_CHARS or "\x00" in m for m in metrics):
        return None
    return metrics


def _rules(rt, session) -> list:
    """Config and API rules, for the forecasts; the page still renders while the config is broken."""
    try:
        config_rules = rt.config.alerting.rules
    except ConfigUnavailable:
        config_rules = []
    return load_rules(session, config_rules)


def _redactor(rt) -> LabelRedactor:
    return LabelRedactor(rt.settings.label_deny_patterns)


@blueprint.get("/assets/<int:asset_id>")
@page_role("viewer")
def asset(asset_id: int):
    rng = _range()
    if rng is None:
        return _bad_request(f"range must be one of {', '.join(RANGES)}")
    extra = _metrics(MAX_EXTRA_CHARTS)
    if extra is None:
        return _bad_request(f"metric: at most {MAX_EXTRA_CHARTS} names of at most {MAX_METRIC_CHARS} characters")
    view = None
    if asset_id <= MAX_ID:
        rt = runtime()
        with rt.store.session() as s:
            view = asset_page(s, asset_id, rng=rng, extra_metrics=extra, now=utcnow(), redactor=_redactor(rt),
                              rules=_rules(rt, s))
    if view is None:
        return render_template("pages/asset_error.html", title="No such asset",
                               message=f"There is no asset {asset_id}. It may have been removed."), 404
    return render_template("pages/asset.html", chart_json=_script_json(view), **view)


def _script_json(view: dict) -> Markup:
    """The charts as JSON safe inside a <script> element: `<`, `>`, `&` and `'` escaped as Jinja's
    `tojson` does, without sorting keys (half a megabyte of columns costs enough to encode)."""
    text = json.dumps({"asset_id": view["asset"]["id"], "range": view["range"].key, "charts": view["charts"]},
                      separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(raw, escaped)
    return Markup(text)  # nosec B704 - escaped for a script element just above


@blueprint.get("/assets/<int:asset_id>/series.json")
@page_role("viewer")
def series_json(asset_id: int):
    rng = _range()
    if rng is None:
        return _bad_request(f"range must be one of {', '.join(RANGES)}")
    metrics = _metrics(MAX_METRICS_PER_REQUEST)
    if not metrics:
        return _bad_request(f"metric: 1 to {MAX_METRICS_PER_REQUEST} names of at most {MAX_METRIC_CHARS} characters")
    if asset_id > MAX_ID:
        abort(404, f"no asset {asset_id}")
    rt = runtime()
    try:
        with rt.store.session() as s:
            payload = charts_payload(s, asset_id, metrics, rng, utcnow(), _redactor(rt), _rules(rt, s))
    except NotFound as exc:
        return jsonify(message=exc.message), 404
    response = jsonify(payload)
    response.headers["Cache-Control"] = "private, no-store"
    return response
