"""Metric series: what is stored, their latest values, and any of them over a range with a step."""

from __future__ import annotations

from datetime import timedelta

from flask_restx import Namespace, Resource, abort, reqparse
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.query import bounded_int, exact_or_prefix, paginate, paged_parser, row_id, timestamp
from monitor_app.metrics.series_query import MAX_BUCKETS, Query, read_series
from monitor_app.metrics.views import bucket_dicts, series_dict
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models import MetricSample, MetricSeries

ns = Namespace("metrics", description="Metric series and samples")
MAX_SERIES_PER_QUERY = 200

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
