from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.query import bounded_int, row_id, timestamp
from monitor_app.store.base import iso
from flask_restx import reqparse
from monitor_app.store.models import MetricSample

ns = Namespace("metrics", description="Stored metric samples")

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
