"""Reading a silence from an API body: each field checked and bounded, errors named by field.

A silence mutes pages, so one that is endless, starts in a distant year or carries a
thousand matchers is as much an attack as a malformed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from api.query import timestamp
from monitor_app.alerting.config import parse_duration
from monitor_app.alerting.matchers import MAX_MATCHERS, parse_matchers
from monitor_app.errors import ConfigError

MAX_COMMENT = 2000


@dataclass(frozen=True)
class SilenceRequest:
    matchers: list[str]
    starts_at: datetime | None
    ends_at: datetime
    comment: str


def read_silence(body: dict, now: datetime, max_length: timedelta) -> SilenceRequest:
    errors: dict[str, str] = {}
    matchers = body.get("matchers")
    if not isinstance(matchers, list) or not matchers or not all(isinstance(m, str) for m in matchers):
        errors["matchers"] = "a non-empty list of matchers such as asset=orders"
    elif len(matchers) > MAX_MATCHERS:
        errors["matchers"] = f"at most {MAX_MATCHERS} matchers"
    else:
        try:
            parse_matchers(matchers)
        except ValueError as exc:
            errors["matchers"] = str(exc)

    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        errors["comment"] = "must be a string"
    elif comment and len(comment) > MAX_COMMENT:
        errors["comment"] = f"must be at most {MAX_COMMENT} characters long"

    starts_at = _field(body, "starts_at", timestamp, errors)
    if starts_at is not None and starts_at > now + max_length:
        errors["starts_at"] = f"must be within {_days(max_length)} from now"

    ends_at = None
    if body.get("ends_at") is not None:
        ends_at = _field(body, "ends_at", timestamp, errors)
        end_field = "ends_at"
    elif body.get("duration") is not None:
        seconds = _field(body, "duration", parse_duration, errors)
        ends_at = None if seconds is None else (starts_at or now) + timedelta(seconds=seconds)
        end_field = "duration"
    else:
        errors["ends_at"] = "give ends_at or duration"
    if ends_at is not None and "starts_at" not in errors:
        if ends_at - (starts_at or now) > max_length:
            errors[end_field] = f"a silence can last at most {_days(max_length)} (DBMON_SILENCE_MAX_DAYS)"
        elif ends_at <= (starts_at or now):
            errors[end_field] = "the silence must end after it starts"

    if errors:
        raise ConfigError(list(errors.items()), "silence")
    return SilenceRequest(matchers=matchers, starts_at=starts_at, ends_at=ends_at, comment=comment or "")


def _field(body: dict, name: str, parse, errors: dict):
    try:
        return parse(body[name]) if body.get(name) is not None else None
    except (ValueError, TypeError) as exc:
        errors[name] = str(exc)
        return None


def _days(length: timedelta) -> str:
    return f"{length.total_seconds() / 86400:g} days"
