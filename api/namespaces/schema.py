"""Schema history: the current schema, its versions, changes filtered by risk/object/time,
and the diff between any two versions."""

from __future__ import annotations

from flask_restx import Namespace, Resource, abort
from sqlalchemy import func, select

from api.auth import require_role
from api.context import runtime
from api.lookups import asset_or_404
from api.query import bounded_int, exact_or_prefix, page_of, paged_parser, paginate, row_id, timestamp
from monitor_app.store.base import iso
from monitor_app.errors import NotFound
from monitor_app.schema.history import diff_versions, latest_snapshot
from monitor_app.platform.vocabulary import RISKS
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet, SchemaSnapshot

ns = Namespace("schema", description="Schema snapshots, change history and diffs")

history_args = paged_parser()

change_args = paged_parser()
change_args.add_argument("asset_id", type=row_id, location="args")
change_args.add_argument("risk", choices=RISKS, location="args", help="exactly this risk")
change_args.add_argument("min_risk", choices=RISKS, location="args", help="this risk or worse")
change_args.add_argument("object", location="args", help="exact name, or a prefix ending in '*' (app.users*)")
change_args.add_argument("object_type", location="args")
change_args.add_argument("action", choices=("added", "removed", "modified"), location="args")
change_args.add_argument("change_set_id", type=row_id, location="args")
change_args.add_argument("since", type=timestamp, location="args")
change_args.add_argument("until", type=timestamp, location="args")

diff_args = paged_parser()
diff_args.add_argument("from", dest="from_version", type=bounded_int(1, 2**31 - 1), required=True, location="args")
diff_args.add_argument("to", dest="to_version", type=bounded_int(1, 2**31 - 1), required=True, location="args")


def change_dict(c: SchemaChange) -> dict:
    return {"id": c.id, "asset_id": c.asset_id, "change_set_id": c.change_set_id, "detected_at": iso(c.detected_at),
            "action": c.action, "object_type": c.object_type, "object": c.object, "risk": c.risk,
            "renamed_from": c.renamed_from, "detail": c.detail}


def change_set_dict(cs: SchemaChangeSet) -> dict:
    return {"id": cs.id, "asset_id": cs.asset_id, "from_version": cs.from_version, "to_version": cs.to_version,
            "detected_at": iso(cs.detected_at), "max_risk": cs.max_risk, "change_count": cs.change_count,
            "context": cs.context}


@ns.route("/assets/<int:asset_id>/current")
class CurrentSchema(Resource):
    @require_role("viewer")
    def get(self, asset_id: int):
        """The latest stored snapshot of an asset's schema."""
        with runtime().store.session() as s:
            asset_or_404(s, asset_id)
            snap = latest_snapshot(s, asset_id)
            if snap is None:
                abort(404, f"asset {asset_id} has no schema snapshot yet")
            return {"asset_id": asset_id, "version": snap.version, "taken_at": iso(snap.taken_at),
                    "engine": snap.engine, "object_count": snap.object_count, "content_hash": snap.content_hash,
                    "snapshot": snap.document}


@ns.route("/assets/<int:asset_id>/history")
class SchemaHistory(Resource):
    @ns.expect(history_args)
    @require_role("viewer")
    def get(self, asset_id: int):
        """Versions of an asset's schema, newest first, each with the change set that made it."""
        args = history_args.parse_args()
        with runtime().store.session() as s:
            asset_or_404(s, asset_id)
            total = s.scalar(select(func.count()).where(SchemaSnapshot.asset_id == asset_id))
            rows = s.execute(
                select(SchemaSnapshot.version, SchemaSnapshot.taken_at, SchemaSnapshot.object_count,
                       SchemaSnapshot.content_hash)
                .where(SchemaSnapshot.asset_id == asset_id).order_by(SchemaSnapshot.version.desc())
                .offset((args.page - 1) * args.per_page).limit(args.per_page)).all()
            sets = {cs.to_version: cs for cs in s.scalars(select(SchemaChangeSet).where(
                SchemaChangeSet.asset_id == asset_id, SchemaChangeSet.to_version.in_([r.version for r in rows])))}
            items = [{"version": r.version, "taken_at": iso(r.taken_at), "object_count": r.object_count,
                      "content_hash": r.content_hash,
                      "change_set": change_set_dict(sets[r.version]) if r.version in sets else None}
                     for r in rows]
            return page_of(total, items, args.page, args.per_page)


@ns.route("/assets/<int:asset_id>/diff")
class SchemaDiff(Resource):
    @ns.expect(diff_args)
    @require_role("viewer")
    def get(self, asset_id: int):
        """Change records between two stored versions (?from=1&to=5), as `dbmon schema diff` prints them."""
        args = diff_args.parse_args()
        with runtime().store.session() as s:
            asset_or_404(s, asset_id)
            try:
                changes = diff_versions(s, asset_id, args.from_version, args.to_version)
            except NotFound as exc:
                abort(404, exc.message)
        return {"asset_id": asset_id, "from": args.from_version, "to": args.to_version, "changes": changes}


@ns.route("/changes")
class ChangeList(Resource):
    @ns.expect(change_args)
    @require_role("viewer")
    def get(self):
        """Individual changes, newest first, filtered by asset, risk, object, action and time."""
        args = change_args.parse_args()
        query = select(SchemaChange)
        if args.asset_id is not None:
            query = query.where(SchemaChange.asset_id == args.asset_id)
        if args.risk:
            query = query.where(SchemaChange.risk == args.risk)
        if args.min_risk:
            query = query.where(SchemaChange.risk.in_(RISKS[RISKS.index(args.min_risk):]))
        if args.object:
            query = query.where(exact_or_prefix(SchemaChange.object, args.object))
        for field in ("object_type", "action", "change_set_id"):
            if args[field] is not None:
                query = query.where(getattr(SchemaChange, field) == args[field])
        if args.since:
            query = query.where(SchemaChange.detected_at >= args.since)
        if args.until:
            query = query.where(SchemaChange.detected_at < args.until)
        with runtime().store.session() as s:
            return paginate(s, query, SchemaChange.id.desc(), args, change_dict)
