from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import func, select

from api.auth import require_role
from api.context import runtime
from api.query import page_of, paged_parser, timestamp
from api.serializers import iso
from monitor_app.store.models import AuditEntry

ns = Namespace("audit", description="Who did what, when, and how it ended")

list_args = paged_parser()
list_args.add_argument("actor", location="args")
list_args.add_argument("action", location="args")
list_args.add_argument("outcome", choices=("ok", "denied", "invalid", "error"), location="args")
list_args.add_argument("since", type=timestamp, location="args")


@ns.route("")
class AuditList(Resource):
    @ns.expect(list_args)
    @require_role("admin")
    def get(self):
        """The audit trail, newest first."""
        args = list_args.parse_args()
        query = select(AuditEntry)
        for field in ("actor", "action", "outcome"):
            if args[field]:
                query = query.where(getattr(AuditEntry, field) == args[field])
        if args.since:
            query = query.where(AuditEntry.at >= args.since)
        with runtime().store.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery()))
            rows = s.scalars(query.order_by(AuditEntry.id.desc()).offset((args.page - 1) * args.per_page)
                             .limit(args.per_page)).all()
            items = [{"id": r.id, "at": iso(r.at), "actor": r.actor, "action": r.action, "target": r.target,
                      "outcome": r.outcome, "detail": r.detail, "remote_addr": r.remote_addr} for r in rows]
            return page_of(total, items, args.page, args.per_page)
