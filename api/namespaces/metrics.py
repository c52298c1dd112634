"""Metric series: what is stored, their latest values, and any of them over a range with a step."""

from __future__ import annotations

from datetime import timedelta

from flask_restx import Namespace, Resource, abort, inputs, reqparse
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.query import bounded_int, exact_or_prefix, paginate, paged_parser, row_id, timestamp
from monitor_app.metrics.series_query import MAX_BUCKETS, Query, read_series
from monitor_app.analysis.series_forecast import stored_forecast
from monitor_app.metrics.views import anomaly_dict, bucket_dicts, series_dict
from monitor_app.store.base import from_epoch, iso, utcnow
from monitor_app.store.models import MetricSample, MetricSeries
from monitor_app.store.models.analysis import MetricAnomaly

ns = Namespace("metrics", description="Metric series and samples, their anomalies and forecasts")
MAX_SERIES_PER_QUERY = 200

def finite_float(value) -> float:
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return number


args_parser = reqparse.RequestParser(bundle_errors=True)
args_parser.add_argument("name", required=True, location="args")
args_parser.add_argument("asset_id", type=row_id, location="args")
args_parser.add_argument("since", type=timestamp, location="args")
args_parser.add_argument("limit", type=bounded_int(1, 10_000), default=500, location="args")


@ns.route("/samples")
class Samples(Resource):
    @ns.expect(args_parser)
    @require_role("viewer")
    def get(self):
        """Samples of one metric, newest first."""
        args = args_parser.parse_args()
        query = select(MetricSample).where(MetricSample.name == args.name)
        if args.asset_id is not None:
            query = query.where(MetricSample.asset_id == args.asset_id)
        if args.since:
            query = query.where(MetricSample.at >= args.since)
        with runtime().store.session() as s:
            rows = s.scalars(query.order_by(MetricSample.at.desc(), MetricSample.id.desc()).limit(args.limit))
            return {"items": [{"name": r.name, "asset_id": r.asset_id, "value": r.value,
                               "labels": r.labels, "at": iso(r.at)} for r in rows]}


series_args = paged_parser()
series_args.add_argument("asset_id", type=row_id, location="args")
series_args.add_argument("name", location="args", help="a metric name, or a prefix ending in *")


@ns.route("/series")
class SeriesList(Resource):
    @ns.expect(series_args)
    @require_role("viewer")
    def get(self):
        """Stored series with their labels and latest value, filtered by asset or name."""
        args = series_args.parse_args()
        query = select(MetricSeries)
        if args.asset_id is not None:
            query = query.where(MetricSeries.asset_id == args.asset_id)
        if args.name:
            query = query.where(exact_or_prefix(MetricSeries.name, args.name))
        with runtime().store.session() as s:
            return paginate(s, query, (MetricSeries.asset_id, MetricSeries.name, MetricSeries.id), args, series_dict)


range_args = reqparse.RequestParser(bundle_errors=True)
range_args.add_argument("series_id", type=row_id, action="append", required=True, location="args",
                        help=f"one or more series ids (at most {MAX_SERIES_PER_QUERY})")
range_args.add_argument("start", type=timestamp, required=True, location="args")
range_args.add_argument("end", type=timestamp, location="args", help="default: now")
range_args.add_argument("step", type=bounded_int(1, 90 * 86400), default=60, location="args", help="seconds")


@ns.route("/query")
class SeriesRange(Resource):
    @ns.expect(range_args)
    @require_role("viewer")
    def get(self):
        """Series over [start, end) in buckets of `step` seconds (min, max, avg, last, count), read from
        the raw samples or the rollup tier that fits the range and step."""
        args = range_args.parse_args()
        now = utcnow()
        end = args.end or now
        ids = list(dict.fromkeys(args.series_id))
        if len(ids) > MAX_SERIES_PER_QUERY:
            abort(400, "Input payload validation failed",
                  errors={"series_id": f"at most {MAX_SERIES_PER_QUERY} series per query"})
        if end <= args.start:
            abort(400, "Input payload validation failed", errors={"end": "must be after start"})
        q = Query(args.start, end, timedelta(seconds=args.step))
        if (end - args.start) / q.step > MAX_BUCKETS:
            abort(400, "Input payload validation failed",
                  errors={"step": f"gives more than {MAX_BUCKETS} buckets over this range; use a larger step"})
        rt = runtime()
        with rt.store.session() as s:
            rows = {r.id: r for r in s.scalars(select(MetricSeries).where(MetricSeries.id.in_(ids)))}
            described = {i: series_dict(r) for i, r in rows.items()}
        missing = [i for i in ids if i not in rows]
        if missing:
            abort(404, f"no series {missing[0]}")
        tier, found = read_series(rt.store, ids, q, now)
        times: dict[int, str | None] = {}
        return {"start": iso(args.start), "end": iso(end), "step": args.step, "tier": tier.name,
                "series": [{**described[i], "points": bucket_dicts(found[i], times)} for i in ids]}


anomaly_args = paged_parser()
anomaly_args.add_argument("asset_id", type=row_id, location="args")
anomaly_args.add_argument("series_id", type=row_id, location="args")
anomaly_args.add_argument("metric", location="args", help="a metric name, or a prefix ending in *")
anomaly_args.add_argument("rule", location="args")
anomaly_args.add_argument("since", type=timestamp, location="args", help="windows still open at or after this")
anomaly_args.add_argument("open", type=inputs.boolean, location="args", help="true: only windows still open")


@ns.route("/anomalies")
class Anomalies(Resource):
    @ns.expect(anomaly_args)
    @require_role("viewer")
    def get(self):
        """Anomaly windows the `anomaly` and `baseline` rules found (newest first): start, end (null while
        open), direction, peak score and value, and the baseline they were measured against."""
        args = anomaly_args.parse_args()
        query = select(MetricAnomaly)
        for column, value in ((MetricAnomaly.asset_id, args.asset_id), (MetricAnomaly.series_id, args.series_id),
                              (MetricAnomaly.rule, args.rule)):
            if value is not None:
                query = query.where(column == value)
        if args.metric:
            query = query.where(exact_or_prefix(MetricAnomaly.metric, args.metric))
        if args.since:
            query = query.where((MetricAnomaly.end_at.is_(None)) | (MetricAnomaly.end_at >= args.since))
        if args.open is not None:
            query = query.where(MetricAnomaly.end_at.is_(None) if args.open else MetricAnomaly.end_at.is_not(None))
        with runtime().store.session() as s:
            return paginate(s, query, (MetricAnomaly.start.desc(), MetricAnomaly.id.desc()), args, anomaly_dict)


forecast_args = reqparse.RequestParser(bundle_errors=True)
forecast_args.add_argument("series_id", type=row_id, required=True, location="args")
forecast_args.add_argument("threshold", type=finite_float, required=True, location="args")
forecast_args.add_argument("window", type=bounded_int(3600, 30 * 86400), default=86400, location="args",
                           help="trend window in seconds; should span a workload cycle")
forecast_args.add_argument("direction", choices=("up", "down", "auto"), default="auto", location="args",
                           help="up: a limit reached from below; down: from above; auto: the side the series is on")


@ns.route("/forecast")
class SeriesForecast(Resource):
    @ns.expect(forecast_args)
    @require_role("viewer")
    def get(self):
        """When a series reaches `threshold`: slope per hour, ETA and hours to it (null when it is not
        being approached, or with less than 1.25 windows of history), and the line to draw from the
        last point to the threshold."""
        args = forecast_args.parse_args()
        now = utcnow()
        with runtime().store.session() as s:
            series = s.get(MetricSeries, args.series_id)
            if series is None:
                abort(404, f"no series {args.series_id}")
            found, history = stored_forecast(s, series.id, args.threshold, args.window, now, direction=args.direction)
            out = {"series": series_dict(series), "threshold": args.threshold, "window": args.window,
                   "history_hours": round(history / 3600, 3), "slope_per_hour": None, "eta": None,
                   "hours_to_threshold": None, "level": None, "method": None, "line": []}
        if found is not None:
            out.update(slope_per_hour=found.slope_per_hour, hours_to_threshold=found.hours_to_threshold,
                       level=found.level, method=found.method)
            if found.eta is not None:
                out["eta"] = iso(from_epoch(found.eta))
                last = found.eta - found.hours_to_threshold * 3600
                out["line"] = [{"at": iso(from_epoch(last)), "value": found.level},
                               {"at": out["eta"], "value": args.threshold}]
        return out
