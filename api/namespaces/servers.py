"""Monitored PostgreSQL, MySQL and MariaDB servers: each one's connection budget and the connections
dbmon holds there."""

from __future__ import annotations

from flask_restx import Namespace, Resource

from api.auth import require_role
from api.context import runtime
from monitor_app.assets.server_usage import server_usage

ns = Namespace("servers", description="Connection budget per monitored database server, and slots held now")


@ns.route("")
class ServerList(Resource):
    @require_role("viewer")
    def get(self):
        """Every server: budget, connections held by dbmon now (and by what), back-off after a refusal."""
        rt = runtime()
        items = server_usage(rt.store, rt.connection_budget)
        return {"items": items, "held": sum(item["held"] for item in items)}
