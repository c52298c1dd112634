"""The audit trail: who did what to which target, and how it ended."""

from __future__ import annotations

import getpass
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor_app.errors import DbmonError
from monitor_app.store.models import AuditEntry

log = logging.getLogger("dbmon.audit")
OUTCOMES = ("ok", "denied", "invalid", "error")
SYSTEM = "system"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "ok",
    detail: dict | None = None,
    remote_addr: str | None = None,
) -> AuditEntry:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    # Actor and target may come from request headers or a monitored system: cut to the columns.
    entry = AuditEntry(actor=actor[:128], action=action[:64], target=target[:255], outcome=outcome,
                       detail=detail or {}, remote_addr=(remote_addr or None) and remote_addr[:64])
    session.add(entry)
    return entry


def record_now(store, **fields) -> None:
    """One row in its own transaction, so no rollback of the caller's work can take it along."""
    with store.session() as s:
        record(s, **fields)


def check_writable(store) -> None:
    """Refuse up front when the trail cannot be reached, so an action is never done unrecorded."""
    try:
        with store.session() as s:
            s.execute(select(AuditEntry.id).limit(1))
    except SQLAlchemyError as exc:
        cause = type(getattr(exc, "orig", None) or exc).__name__
        raise DbmonError(f"dbmon's store holds no usable audit trail ({cause}); run `dbmon db upgrade` "
                         "or set DBMON_DATABASE_URL; nothing was changed", permanent=True) from None


def outcome_of(exc: BaseException) -> str:
    """A permanent domain error is the caller's bad input; anything else is our failure."""
    if isinstance(exc, DbmonError) and exc.permanent:
        return "invalid"
    return "error"


def describe(exc: BaseException) -> str:
    # Only domain errors are worded for users; another exception's text may quote a DSN or a secret.
    if isinstance(exc, DbmonError):
        return exc.message[:500]
    return type(exc).__name__


@dataclass
class Draft:
    """What an action will be recorded as; the action fills in target and detail as it learns them."""

    target: str = ""
    detail: dict = field(default_factory=dict)
    outcome: str = "ok"


@contextmanager
def recorded(store, *, actor: str, action: str, target: str = "", detail: dict | None = None,
             remote_addr: str | None = None,
             classify: Callable[[BaseException], str] = outcome_of) -> Iterator[Draft]:
    """Run an action and write its audit row afterwards in a transaction of its own.

    The row is written whether the action succeeds, fails or raises; the action's own
    transaction must be closed inside the block (SQLite allows one writer at a time)."""
    draft = Draft(target=target, detail=dict(detail or {}))
    try:
        yield draft
    except BaseException as exc:
        detail = {**draft.detail, "error": describe(exc)}
        try:
            record_now(store, actor=actor, action=action, target=draft.target, outcome=classify(exc),
                       detail=detail, remote_addr=remote_addr)
        except Exception as audit_exc:  # noqa: BLE001 - the action's own error is the one to report
            log.error("could not record the failed %s by %s in the audit trail: %s", action, actor,
                      type(audit_exc).__name__)
        raise
    record_now(store, actor=actor, action=action, target=draft.target, outcome=draft.outcome,
               detail=draft.detail, remote_addr=remote_addr)


def cli_actor() -> str:
    """The OS account running a CLI command; the uid is kept because $USER can be set to anything."""
    uid = os.getuid()
    try:
        return f"cli:{getpass.getuser()} (uid {uid})"
    except (OSError, KeyError):  # no login name in the environment and no passwd entry
        return f"cli:uid {uid}"
