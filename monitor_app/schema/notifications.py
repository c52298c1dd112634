"""Reading one `dbmon_schema` notification, which anyone connected to the database can send.

A payload is hostile until proven otherwise: it is size-limited, parsed by pydantic's JSON
parser (bounded nesting, no lone surrogates) into a strict model whose strings are short and
free of control characters, and anything else is rejected. A well-formed payload is only a
hint to check the schema; what it says (command tag, user, application name) counts as verified
only when it carries the trigger's signature, made with a key in `_dbmon.notify_key` that
only the key's owner can read, and was sent by the session it names (its backend pid).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from monitor_app.schema.event_trigger import SIGNED_LENGTH, SIGNED_PREFIX

# The trigger's own payloads stay under 1 kB (a command tag, names of at most 63 bytes, escaped);
# PostgreSQL allows 8000 bytes.
MAX_PAYLOAD_CHARS = 2048
SIGNATURE = re.compile(r"[0-9a-f]{64}")

Text = Annotated[str, StringConstraints(max_length=512, pattern=r"^[^\x00-\x1f\x7f]*$")]
Name = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


class Notification(BaseModel):
    """What the event trigger sends; unknown keys are ignored, wrong types rejected.

    The trigger sends tag, event (`ddl_command_start`; earlier releases sent `ddl_command_end`),
    user, application name and pid; `object`, `objects` and `at` are what releases before the
    per-session payload sent, still read from them."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    tag: Name
    event: Literal["ddl_command_start", "ddl_command_end", "sql_drop"]
    object: Text | None = None
    objects: int = Field(0, ge=0, le=2**31)
    user: Name | None = None
    application_name: Name | None = None
    at: datetime | None = None
    pid: int | None = Field(None, ge=0, le=2**31)


class RejectedNotification(ValueError):
    pass


@dataclass(frozen=True)
class Received:
    note: Notification
    verified: bool
    basis: str  # why it is (not) verified, for the change set's context
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def signature(key: bytes, body: str) -> str:
    """sha256(key || sha256(key || body)): what the trigger function computes."""
    inner = hashlib.sha256(key + body.encode("utf-8")).digest()
    return hashlib.sha256(key + inner).hexdigest()


def _split(payload: str) -> tuple[str | None, str]:
    """(signature or None if unsigned, json). Split by position: the session setting the trigger
    reuses is the user's to overwrite, with anything of the right length before the json, and
    that notification must still reach the check (marked a bad signature), not be dropped."""
    if not payload.startswith(SIGNED_PREFIX):
        return None, payload
    if len(payload) <= SIGNED_LENGTH:
        raise RejectedNotification("malformed signature")
    sig, dot = payload[len(SIGNED_PREFIX):SIGNED_LENGTH - 1], payload[SIGNED_LENGTH - 1]
    return (sig if SIGNATURE.fullmatch(sig) and dot == "." else ""), payload[SIGNED_LENGTH:]


def read(payload: str, sender_pid: int, key: bytes | None) -> Received:
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise RejectedNotification(f"payload of {len(payload)} characters (limit {MAX_PAYLOAD_CHARS})")
    sig, body = _split(payload)
    try:
        note = Notification.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise RejectedNotification(f"{where}: {first['msg']}"[:200]) from None
    if sig is None:
        return Received(note, False, "unsigned: any user of the database can send this")
    if key is None:
        return Received(note, False, "signed, but dbmon's role cannot read the trigger's key")
    if not sig or not hmac.compare_digest(sig, signature(key, body)):
        return Received(note, False, "bad signature")
    if note.pid != sender_pid:
        return Received(note, False, "signed, but re-sent by another session")
    return Received(note, True, "signed by the event trigger in the session that ran the DDL")
