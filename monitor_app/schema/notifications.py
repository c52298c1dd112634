"""Reading one `dbmon_schema` notification, which anyone connected to the database can send.

The trigger sends the bare command tag (`CREATE TABLE`). A payload is hostile until proven
otherwise: anything but a short tag of capital words is rejected. Earlier releases sent JSON
(signed: `v1.<signature>.<json>`); a trigger not yet upgraded still does, so such a payload is
size-limited, parsed by pydantic's JSON parser (bounded nesting, no lone surrogates) into a
strict model whose strings are short and free of control characters, and only its tag is kept.

Nothing in a payload is trusted: it is a hint to check the schema now, naming the command. Who
sent it is what the server says of the sending backend's pid (`listener`), which the server
sets on every notification and no session can forge, so the signature is not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

# Earlier releases' JSON stayed under 1 kB (a command tag, names of at most 63 bytes, escaped);
# PostgreSQL allows 8000 bytes.
MAX_PAYLOAD_CHARS = 2048
MAX_TAG_CHARS = 64
TAG = re.compile(r"[A-Z]+(?: [A-Z]+)*")
SIGNED_PREFIX = "v1."
SIGNED_LENGTH = len(SIGNED_PREFIX) + 64 + 1  # prefix, hex signature, dot

Text = Annotated[str, StringConstraints(max_length=512, pattern=r"^[^\x00-\x1f\x7f]*$")]
Name = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


class EarlierNotification(BaseModel):
    """What earlier releases' triggers sent; unknown keys are ignored, wrong types rejected.
    Only `tag` is used: the rest is whatever the sender claimed."""

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
    tag: str
    earlier_release: bool = False  # in the payload shape of a trigger not yet upgraded
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def _tag(tag: str) -> str:
    if len(tag) > MAX_TAG_CHARS or not TAG.fullmatch(tag):
        raise RejectedNotification("not a command tag")
    return tag


def _earlier(payload: str) -> str:
    """The tag of an earlier release's payload: json, or `v1.` + 64 hex + `.` + json."""
    body = payload
    if payload.startswith(SIGNED_PREFIX):
        if len(payload) <= SIGNED_LENGTH:
            raise RejectedNotification("malformed signed payload")
        body = payload[SIGNED_LENGTH:]
    try:
        note = EarlierNotification.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise RejectedNotification(f"{where}: {first['msg']}"[:200]) from None
    return _tag(note.tag)


def read(payload: str) -> Received:
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise RejectedNotification(f"payload of {len(payload)} characters (limit {MAX_PAYLOAD_CHARS})")
    if payload.startswith(("{", SIGNED_PREFIX)):
        return Received(_earlier(payload), earlier_release=True)
    return Received(_tag(payload))
