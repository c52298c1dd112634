"""Collector health: which checks keep failing, on what, since when."""

from __future__ import annotations

from flask_restx import Namespace, Resource, inputs
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.serializers import iso
from monitor_app.platform.collector_health import as_dict, health_rows
from monitor_app.store.models import Asset

ns = Namespace("collectors", description="Failure streaks of schema, posture, container, TLS and host collectors")

list_args = ns.parser()
list_args.add_argument("failing", type=inputs.boolean, location="args", help="true: only failing collectors")


@ns.route("")
class CollectorList(Resource):
    @ns.expect(list_args)
    @require_role("viewer")
    def get(self):
        """Every (collector, subject) seen, failing ones first."""
        args = list_args.parse_args()
        with runtime().store.session() as s:
            rows = health_rows(s, failing_only=bool(args.failing))
            names = dict(s.execute(select(Asset.id, Asset.name).where(
                Asset.id.in_({r.asset_id for r in rows if r.asset_id is not None}))).all())
            items = []
            for row in sorted(rows, key=lambda r: not r.failing):
                item = as_dict(row)
                item.update(asset=names.get(row.asset_id), **{k: iso(item[k]) for k in
                                                              ("failing_since", "last_failure_at", "last_success_at")})
                items.append(item)
            return {"items": items, "failing": sum(1 for r in rows if r.failing)}
