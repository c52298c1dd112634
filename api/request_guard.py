"""Checks every request gets before any handler: body size, path and query-string values.

Werkzeug's `int` converter takes integers of any size and query strings may carry NUL
bytes; SQLite cannot bind the first and PostgreSQL refuses the second, which used to
surface as 500s. Refusing them here, once, with the parameter named, keeps every endpoint
safe, including those added later.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_restx import abort
from werkzeug.exceptions import RequestEntityTooLarge

MAX_ID = 2**63 - 1
MAX_QUERY_VALUE = 1024
MAX_PATH_TEXT = 512


def install(app: Flask, blueprint: Blueprint, max_body_bytes: int) -> None:
    # Werkzeug enforces this while reading a body (chunked uploads included); the hook below
    # refuses a declared oversize body before anything else happens.
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes

    @app.before_request
    def _body_size():
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise RequestEntityTooLarge(f"the request body is larger than {max_body_bytes} bytes "
                                        "(DBMON_API_MAX_BODY_BYTES)")

    @blueprint.url_value_preprocessor
    def _path_and_query(endpoint, values):
        errors = {name: problem for name, value in (values or {}).items()
                  if (problem := path_value_problem(value))}
        for name in request.args:
            problem = query_value_problem(name, request.args.getlist(name))
            if problem:
                errors.setdefault(name, problem)
        if errors:
            abort(400, "invalid input: " + ", ".join(sorted(errors)), errors=errors)


def path_value_problem(value) -> str | None:
    if isinstance(value, int) and not 0 <= value <= MAX_ID:
        return f"must be between 0 and {MAX_ID}"
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        if len(value) > MAX_PATH_TEXT:
            return f"must be at most {MAX_PATH_TEXT} characters long"
    return None


def query_value_problem(name: str, values: list[str]) -> str | None:
    if "\x00" in name:
        return "parameter names must not contain NUL characters"
    for value in values:
        if "\x00" in value:
            return "must not contain NUL characters"
        if len(value) > MAX_QUERY_VALUE:
            return f"must be at most {MAX_QUERY_VALUE} characters long"
    return None
