from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource, abort, fields
from sqlalchemy import select

from api.audit_trail import mark_recorded
from api.auth import require_role
from api.context import actor, runtime
from api.json_body import json_object
from monitor_app.store.base import iso
from monitor_app.access import audit
from monitor_app.access.api_keys import create_key, revoke
from monitor_app.store.models import ApiKey
from monitor_app.store.models.core import ROLES

ns = Namespace("apikeys", description="API keys and their roles (admin only)")

key_request = ns.model("ApiKeyRequest", {
    "name": fields.String(required=True, min_length=1, max_length=128),
    "role": fields.String(required=True, enum=list(ROLES)),
})


def _key_dict(k: ApiKey) -> dict:
    return {"id": k.id, "name": k.name, "prefix": k.prefix, "role": k.role, "created_at": iso(k.created_at),
            "last_used_at": iso(k.last_used_at), "revoked_at": iso(k.revoked_at)}


@ns.route("")
class KeyList(Resource):
    @require_role("admin")
    def get(self):
        """Keys (never the key itself: only its prefix)."""
        with runtime().store.session() as s:
            return {"items": [_key_dict(k) for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]}

    @ns.expect(key_request)
    @ns.response(201, "created; the key is shown only in this response")
    @require_role("admin")
    def post(self):
        """Create a key."""
        body = json_object(key_request)
        with runtime().store.session() as s:
            row, plain = create_key(s, name=body["name"], role=body["role"])
            audit.record(s, actor=actor(), action="apikey.create", target=body["name"], outcome="ok",
                         detail={"role": body["role"], "id": row.id}, remote_addr=request.remote_addr)
            return {**_key_dict(row), "key": plain}, 201


@ns.route("/<int:key_id>")
class KeyItem(Resource):
    @require_role("admin")
    def delete(self, key_id: int):
        """Revoke a key."""
        with runtime().store.session() as s:
            done = revoke(s, key_id)
            audit.record(s, actor=actor(), action="apikey.revoke", target=str(key_id),
                         outcome="ok" if done else "invalid", remote_addr=request.remote_addr)
        mark_recorded()
        if not done:
            abort(404, f"no active key {key_id}")
        return {"id": key_id, "revoked": True}
