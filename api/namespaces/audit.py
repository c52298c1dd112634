from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.query import paginate, paged_parser, timestamp
from monitor_app.store.base import iso
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
            return paginate(s, query, AuditEntry.id.desc(), args, _entry_dict)


def _entry_dict(r: AuditEntry) -> dict:
    return {"id": r.id, "at": iso(r.at), "actor": r.actor, "action": r.action, "target": r.target,
            "outcome": r.outcome, "detail": r.detail, "remote_addr": r.remote_addr}
