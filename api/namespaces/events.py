from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.query import exact_or_prefix, paged_parser, paginate, row_id, timestamp
from api.serializers import event_dict
from monitor_app.store.models import Event
from monitor_app.platform.vocabulary import SEVERITIES

ns = Namespace("events", description="The append-only event log")

list_args = paged_parser()
list_args.add_argument("type", location="args", help="exact type, or a prefix ending in '*' (asset.*)")
list_args.add_argument("severity", choices=SEVERITIES, location="args")
list_args.add_argument("min_severity", choices=SEVERITIES, location="args")
list_args.add_argument("asset_id", type=row_id, location="args")
list_args.add_argument("since", type=timestamp, location="args")
list_args.add_argument("until", type=timestamp, location="args")


@ns.route("")
class EventList(Resource):
    @ns.expect(list_args)
    @require_role("viewer")
    def get(self):
        """Events, newest first."""
        args = list_args.parse_args()
        query = select(Event)
        if args.type:
            query = query.where(exact_or_prefix(Event.type, args.type))
        if args.severity:
            query = query.where(Event.severity == args.severity)
        if args.min_severity:
            query = query.where(Event.severity.in_(SEVERITIES[SEVERITIES.index(args.min_severity):]))
        if args.asset_id is not None:
            query = query.where(Event.asset_id == args.asset_id)
        if args.since:
            query = query.where(Event.detected_at >= args.since)
        if args.until:
            query = query.where(Event.detected_at < args.until)
        with runtime().store.session() as s:
            return paginate(s, query, Event.id.desc(), args, event_dict)
