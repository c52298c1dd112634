"""The Flask app factory. Namespaces are listed in api.namespaces and imported here, once."""

from __future__ import annotations

import importlib
import logging

from flask import Blueprint, Flask, jsonify
from flask_restx import Api
from werkzeug.exceptions import HTTPException

from api import request_guard
from api.json_body import GuardedJSONProvider
from monitor_app.errors import ConfigError, DbmonError, NotFound
from monitor_app.platform.package_files import static_dir, templates_dir
from monitor_app.platform.runtime import Runtime

log = logging.getLogger("dbmon.api")


def create_app(runtime: Runtime | None = None) -> Flask:
    rt = runtime or Runtime()
    app = Flask(__name__, template_folder=str(templates_dir()), static_folder=str(static_dir()),
                static_url_path="/static")
    app.json = GuardedJSONProvider(app)
    app.extensions["dbmon"] = rt
    app.config["RESTX_MASK_SWAGGER"] = False
    app.config["RESTX_ERROR_404_HELP"] = False
    app.config["BUNDLE_ERRORS"] = True

    blueprint = Blueprint("api_v1", __name__, url_prefix="/api/v1")
    api = Api(blueprint, version="1", title="dbmon API", doc="/docs",
              description="Read everything dbmon knows; trigger scans. Authenticate with the X-API-Key header.",
              authorizations={"apikey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
              security="apikey")
    from api.namespaces import NAMESPACES

    for path in NAMESPACES:
        module, _, attr = path.partition(":")
        api.add_namespace(getattr(importlib.import_module(module), attr))
    _register_errors(app, api)
    request_guard.install(app, blueprint, rt.settings.api_max_body_bytes)
    app.register_blueprint(blueprint)

    from api.health import health
    from api.pages import pages
    from api.prometheus import prometheus

    app.register_blueprint(health)
    app.register_blueprint(pages)
    app.register_blueprint(prometheus)
    from api.web import install as install_pages

    install_pages(app, rt)
    from api.audit_trail import install as install_audit_trail

    install_audit_trail(app)

    from api.proxy import trust_forwarded_headers

    trust_forwarded_headers(app, rt.settings.api_trusted_proxies)
    return app


def _register_errors(app: Flask, api: Api) -> None:
    @api.errorhandler(ConfigError)
    def _config_error(exc: ConfigError):
        """Invalid input: `errors` maps each field to its problem."""
        return {"message": "invalid input", "errors": {path: msg for path, msg in exc.errors}}, 400

    @api.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        """No such object."""
        return {"message": exc.message}, 404

    @api.errorhandler(DbmonError)
    def _dbmon_error(exc: DbmonError):
        """Refused (400, with the field in `errors`) or a dependency unavailable (503)."""
        body = {"message": exc.message}
        if exc.field:
            body["errors"] = {exc.field: exc.message}
        return body, 400 if exc.permanent else 503

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return jsonify(message=exc.description), exc.code
        log.exception("unhandled error")
        return jsonify(message="internal error; see the server log"), 500
