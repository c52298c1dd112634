"""Discovery inventory (every container and the verdict on it) and each asset's containers and lifecycle."""

from __future__ import annotations

from flask_restx import Namespace, Resource, abort, inputs
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.lookups import asset_or_404
from api.query import exact_or_prefix, paged_parser, paginate
from api.serializers import asset_dict, event_dict, redact
from monitor_app.store.base import iso
from monitor_app.store.models import Event
from monitor_app.store.models.containers import ContainerState

ns = Namespace("containers", description="Docker containers: discovery inventory and lifecycle events")

list_args = paged_parser()
list_args.add_argument("database", type=inputs.boolean, location="args",
                       help="true: only containers identified as databases; false: only the others")
list_args.add_argument("engine", location="args")
list_args.add_argument("include_gone", type=inputs.boolean, default=False, location="args")

events_args = paged_parser()
events_args.add_argument("type", location="args", help="exact type, or a prefix ending in '*' (container.*)")


def container_dict(st: ContainerState, full: bool = False) -> dict:
    rec = st.record or {}
    out = {
        "container_id": st.container_id, "name": st.name, "image": st.image, "engine": st.engine,
        "is_database": st.is_database, "confidence": st.confidence, "reasons": st.reasons, "status": st.status,
        "restart_count": st.restart_count, "asset_id": st.asset_id, "health": rec.get("health"),
        "ports": sorted(set(rec.get("exposed_ports") or []) | set(rec.get("listening_ports") or [])),
        "published_ports": rec.get("published_ports") or [], "first_seen_at": iso(st.first_seen_at),
        "last_seen_at": iso(st.last_seen_at), "gone_at": iso(st.gone_at),
    }
    if full:
        out["record"] = rec  # normalised: env variable names only, never values
    return redact(out)


@ns.route("")
class ContainerList(Resource):
    @ns.expect(list_args)
    @require_role("viewer")
    def get(self):
        """The discovery inventory: every container seen, database or not, with the reasons for the verdict."""
        args = list_args.parse_args()
        query = select(ContainerState)
        if args.database is not None:
            query = query.where(ContainerState.is_database == args.database)
        if args.engine:
            query = query.where(ContainerState.engine == args.engine)
        if not args.include_gone:
            query = query.where(ContainerState.status != "gone")
        with runtime().store.session() as s:
            return paginate(s, query, ContainerState.name, args, container_dict)


@ns.route("/<string:container_id>")
class ContainerItem(Resource):
    @require_role("viewer")
    def get(self, container_id: str):
        """One container by id or unique id prefix (at least 12 characters)."""
        if len(container_id) < 12:
            abort(400, "container_id: give at least 12 characters")
        with runtime().store.session() as s:
            rows = s.scalars(select(ContainerState).where(ContainerState.container_id.startswith(container_id, autoescape=True))
                             .limit(2)).all()
            if not rows:
                abort(404, f"no container {container_id}")
            if len(rows) > 1:
                abort(400, f"container_id: prefix {container_id} is ambiguous")
            return container_dict(rows[0], full=True)


@ns.route("/assets/<int:asset_id>")
class AssetContainers(Resource):
    @require_role("viewer")
    def get(self, asset_id: int):
        """An asset with every container that has backed it (recreated containers keep the asset)."""
        with runtime().store.session() as s:
            asset = asset_or_404(s, asset_id)
            rows = s.scalars(select(ContainerState).where(ContainerState.asset_id == asset_id)
                             .order_by(ContainerState.first_seen_at.desc())).all()
            return {"asset": asset_dict(asset), "containers": [container_dict(r, full=True) for r in rows]}


@ns.route("/assets/<int:asset_id>/events")
class AssetLifecycle(Resource):
    @ns.expect(events_args)
    @require_role("viewer")
    def get(self, asset_id: int):
        """Lifecycle, connectivity and TLS events of one container asset, newest first."""
        args = events_args.parse_args()
        query = select(Event).where(Event.asset_id == asset_id)
        if args.type:
            query = query.where(exact_or_prefix(Event.type, args.type))
        else:
            query = query.where(Event.type.like("container.%") | Event.type.like("service.%")
                                | Event.type.like("tls.%") | Event.type.like("asset.%"))
        with runtime().store.session() as s:
            asset_or_404(s, asset_id)
            return paginate(s, query, (Event.observed_at.desc(), Event.id.desc()), args, event_dict)
