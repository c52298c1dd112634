"""Security posture of monitored PostgreSQL assets: current findings and what could not be checked."""

from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.lookups import asset_or_404
from api.query import paginate, paged_parser, row_id
from monitor_app.posture.check import release_list_view
from monitor_app.posture.views import FINDING_SEVERITIES, finding_dict
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models.posture import PostureFinding, PostureState

ns = Namespace("posture", description="Security posture of monitored PostgreSQL servers")

list_args = paged_parser()
list_args.add_argument("severity", choices=FINDING_SEVERITIES, location="args")
list_args.add_argument("asset_id", type=row_id, location="args")


@ns.route("/assets/<int:asset_id>")
class AssetPosture(Resource):
    @require_role("viewer")
    def get(self, asset_id: int):
        """One asset's open findings (critical first), its last check, and what its role could not read."""
        with runtime().store.session() as s:
            asset = asset_or_404(s, asset_id)
            state = s.get(PostureState, asset_id)
            rows = s.scalars(select(PostureFinding).where(PostureFinding.asset_id == asset_id)
                             .order_by(PostureFinding.severity, PostureFinding.finding)).all()
            return {
                "asset_id": asset.id, "asset": asset.name,
                "checked_at": iso(state.checked_at) if state else None,
                "attempted_at": iso(state.attempted_at) if state else None,
                "last_error": state.last_error if state else None,
                "server_version": state.server_version if state else None,
                "not_checked": (state.not_checked or {}) if state else {},
                "release_list": release_list_view(state.release_list_as_of if state else None, utcnow().date()),
                "findings": [finding_dict(r) for r in rows],
            }


@ns.route("/findings")
class FindingList(Resource):
    @ns.expect(list_args)
    @require_role("viewer")
    def get(self):
        """Open findings across assets, filtered by severity or asset."""
        args = list_args.parse_args()
        query = select(PostureFinding)
        if args.severity:
            query = query.where(PostureFinding.severity == args.severity)
        if args.asset_id is not None:
            query = query.where(PostureFinding.asset_id == args.asset_id)
        with runtime().store.session() as s:
            return paginate(s, query, (PostureFinding.asset_id, PostureFinding.finding), args, finding_dict)
