from __future__ import annotations

from flask_restx import Namespace, Resource
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.lookups import asset_or_404
from api.query import paginate, paged_parser
from api.serializers import asset_dict
from monitor_app.assets.lifecycle import STATUSES
from monitor_app.store.models import Asset

ns = Namespace("assets", description="Everything dbmon watches")

list_args = paged_parser()
list_args.add_argument("kind", choices=("database", "container", "host"), location="args")
list_args.add_argument("engine", location="args")
list_args.add_argument("status", choices=STATUSES, location="args")
list_args.add_argument("source", location="args")


@ns.route("")
class AssetList(Resource):
    @ns.expect(list_args)
    @require_role("viewer")
    def get(self):
        """List assets, filtered by kind, engine, status or source."""
        args = list_args.parse_args()
        query = select(Asset)
        for field in ("kind", "engine", "status", "source"):
            if args[field]:
                query = query.where(getattr(Asset, field) == args[field])
        with runtime().store.session() as s:
            return paginate(s, query, Asset.id, args, asset_dict)


@ns.route("/<int:asset_id>")
class AssetItem(Resource):
    @require_role("viewer")
    def get(self, asset_id: int):
        """One asset with its last probe details."""
        with runtime().store.session() as s:
            return asset_dict(asset_or_404(s, asset_id))
