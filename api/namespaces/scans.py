from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource, abort, fields

from api.auth import require_role
from api.context import actor, runtime
from api.json_body import json_object
from api.request_guard import MAX_ID
from api.serializers import run_dict
from monitor_app.access import audit
from monitor_app.platform.scan_kinds import SCAN_KINDS
from monitor_app.store.models import Asset

ns = Namespace("scans", description="Start a scan now and read its result")

scan_request = ns.model("ScanRequest", {
    "kind": fields.String(required=True, enum=sorted(SCAN_KINDS), description="what to scan"),
    "asset_id": fields.Integer(min=1, max=MAX_ID, description="target asset, for kinds that take one"),
})


@ns.route("")
class ScanList(Resource):
    @ns.expect(scan_request)
    @ns.response(202, "queued")
    @require_role("operator")
    def post(self):
        """Queue a scan; poll GET /scans/{id} for its result."""
        body = json_object(scan_request)
        kind = SCAN_KINDS[body["kind"]]
        asset_id = body.get("asset_id")
        rt = runtime()
        if kind.asset == "required" and asset_id is None:
            abort(400, "asset_id is required for this kind", errors={"asset_id": "required for kind " + body["kind"]})
        if kind.asset == "none" and asset_id is not None:
            abort(400, "this kind takes no asset", errors={"asset_id": "not accepted for kind " + body["kind"]})
        if asset_id is not None:
            with rt.store.session() as s:
                if s.get(Asset, asset_id) is None:
                    abort(400, "unknown asset", errors={"asset_id": f"no asset {asset_id}"})
        kwargs = {"asset_id": asset_id} if asset_id is not None else {}
        run_id = rt.dispatch(kind.task, kwargs, requested_by=actor(), kind=body["kind"])
        with rt.store.session() as s:
            audit.record(s, actor=actor(), action="scan.request", target=body["kind"], outcome="ok",
                         detail={"scan_id": run_id, **kwargs}, remote_addr=request.remote_addr)
        return {"id": run_id, "kind": body["kind"], "status": "queued"}, 202


@ns.route("/<string:scan_id>")
class ScanItem(Resource):
    @require_role("viewer")
    def get(self, scan_id: str):
        """A scan's state: queued, running, done (with result) or failed (with error)."""
        run = runtime().ledger.get(scan_id)
        if run is None:
            abort(404, f"no scan {scan_id}")
        return run_dict(run)
