"""Whether the config file on disk is the one in force. Viewers learn only since when it is
invalid; the errors (field paths) are for admins, since a parser's message can quote the file."""

from __future__ import annotations

from flask_restx import Namespace, Resource

from api.auth import require_role
from api.context import principal, runtime
from monitor_app.store.base import iso
from monitor_app.config.last_good import ConfigUnavailable

ns = Namespace("config", description="State of the config file")


@ns.route("")
class ConfigState(Resource):
    @require_role("viewer")
    def get(self):
        """valid, in_force (file, last good, none), loaded_at, invalid_since; admins also get errors."""
        rt = runtime()
        try:
            _ = rt.config  # re-reads the file if it changed
        except ConfigUnavailable:
            pass
        status = rt.config_source.status
        body = {"valid": status.valid, "in_force": status.in_force, "loaded_at": iso(status.loaded_at),
                "invalid_since": iso(status.invalid_since)}
        who = principal()
        if not status.valid and who is not None and who.allows("admin"):
            body["errors"] = [{"field": field, "message": message} for field, message in status.errors]
        return body
