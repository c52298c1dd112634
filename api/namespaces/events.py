from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import func, select

from api.auth import require_role
from api.context import runtime
from api.query import page_of, paged_parser, timestamp
from api.serializers import event_dict
from monitor_app.store.models import Event
from monitor_app.store.models.core import SEVERITIES

ns = Namespace("events", description="The append-only event log")

list_args = paged_parser()
list_args.add_argument("type", location="args", help="exact type, or a prefix ending in '*' (asset.*)")
list_args.add_argument("severity", choices=SEVERITIES, location="args")
list_args.add_argument("min_severity", choices=SEVERITIES, location="args")
list_args.add_argument("asset_id", type=int, location="args")
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
            query = query.where(Event.type.like(args.type[:-1] + "%") if args.type.endswith("*")
                                else Event.type == args.type)
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
            total = s.scalar(select(func.count()).select_from(query.subquery()))
            rows = s.scalars(query.order_by(Event.id.desc()).offset((args.page - 1) * args.per_page)
                             .limit(args.per_page)).all()
            return page_of(total, [event_dict(e) for e in rows], args.page, args.per_page)
