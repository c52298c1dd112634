"""Request bodies: parsed only after the key was checked, and only into values the store can hold.

A body is hostile until proven otherwise. Python's parser raises RecursionError (not a
ValueError) on deep nesting, accepts NaN, integers of any size and lone surrogates, and
each of those used to surface later as a 500 from the store or from datetime arithmetic.
Everything here answers 400 with the offending field's path instead, and no message
repeats the value it refuses, so a large body is never echoed back.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider
from flask_restx import abort
from jsonschema import Draft4Validator
from werkzeug.exceptions import RequestEntityTooLarge

MAX_DEPTH = 32
INT64 = (-(2**63), 2**63 - 1)


class BodyError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def parse(data: bytes | str) -> Any:
    """Strict JSON: no NaN/Infinity, depth, integer range and string contents checked."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise BodyError("(body)", f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # includes UnicodeDecodeError and over-long integer literals
        raise BodyError("(body)", f"not valid JSON ({type(exc).__name__})") from None
    check_value(value)
    return value


def check_value(value: Any, path: str = "", depth: int = 0) -> None:
    """Raise BodyError naming the first value a database or a datetime could not take."""
    where = path or "(body)"
    if depth > MAX_DEPTH:
        raise BodyError(where, f"nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise BodyError(where, "integer out of the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BodyError(where, "must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            check_value(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_value(item, f"{path}[{i}]", depth + 1)


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise BodyError(where, "must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(where, "contains a lone surrogate (not valid Unicode)") from None


class GuardedJSONProvider(DefaultJSONProvider):
    """Makes every `request.get_json()` as strict as `json_object()`."""

    def loads(self, s, **kwargs):
        return parse(s)


def json_object(model=None) -> dict:
    """The request's JSON object, validated against a flask-restx model's schema if given.

    Call it inside the handler, i.e. after `require_role` has accepted the key."""
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(data) >= limit:
        # A chunked body is cut at the limit rather than refused; refuse it here.
        raise RequestEntityTooLarge(f"the request body is larger than {limit} bytes (DBMON_API_MAX_BODY_BYTES)")
    try:
        body = parse(data or b"{}")
    except BodyError as exc:
        abort(400, f"invalid JSON body: {exc.field}: {exc.reason}", errors={exc.field: exc.reason})
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object", errors={"(body)": "must be a JSON object"})
    if model is not None:
        errors = schema_errors(model.__schema__, body)
        if errors:
            abort(400, "invalid input", errors=errors)
    return body


def schema_errors(schema: dict, body: dict) -> dict[str, str]:
    """Field → message for each schema violation, worded without the rejected value."""
    errors: dict[str, str] = {}
    for err in Draft4Validator(schema).iter_errors(body):
        field = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            field = ".".join([*map(str, err.absolute_path), _missing_property(err)])
        errors.setdefault(field or "(body)", _describe(err))
    return errors


def _missing_property(err) -> str:
    have = err.instance if isinstance(err.instance, dict) else {}
    return next((name for name in err.validator_value if name not in have), "(body)")


def _describe(err) -> str:
    v, expected = err.validator, err.validator_value
    if v == "required":
        return "is required"
    if v == "type":
        return f"must be of type {expected}"
    if v == "enum":
        return "must be one of " + ", ".join(map(str, expected))
    if v in ("minimum", "maximum"):
        return f"must be {'at least' if v == 'minimum' else 'at most'} {expected}"
    if v in ("minLength", "maxLength"):
        return f"must be {'at least' if v == 'minLength' else 'at most'} {expected} characters long"
    if v == "additionalProperties":
        return "unknown field"
    return f"fails the {v} check"
