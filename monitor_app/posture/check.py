"""One posture check of one asset, the body of the `posture.check` task, free of Celery.

Connect, collect, evaluate outside any store transaction; then, in one unit of work, compare
with the findings stored for the asset and record `posture.finding_opened` /
`posture.finding_resolved` only for what changed, so a standing problem pages once.
"""

from __future__ import annotations

from datetime import date, datetime

import psycopg2
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from monitor_app.platform.collector_health import Attempt, asset_subject, record_attempt
from monitor_app.assets.connection_budget import BudgetExhausted, server_key
from monitor_app.assets.login_target import loginable, login_target
from monitor_app.errors import DbmonError
from monitor_app.platform import spread
from monitor_app.platform.event_log import record_event
from monitor_app.posture.evaluate import Finding, Posture, evaluate
from monitor_app.posture.facts import collect, is_local_host
from monitor_app.posture.releases import STALE_AFTER_DAYS, ReleaseList, load_release_list
from monitor_app.schema.check import postgres_dsn
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.posture import PostureFinding, PostureState


def release_list(settings) -> ReleaseList:
    return load_release_list(settings.posture_release_list)


def release_list_view(as_of: str | None, today) -> dict | None:
    """How old the list a check used is; a stale one under-reports servers that are behind."""
    if not as_of:
        return None
    age = (today - date.fromisoformat(as_of)).days
    return {"as_of": as_of, "age_days": age, "stale": age > STALE_AFTER_DAYS}


def _state(session, asset_id: int) -> PostureState:
    state = session.get(PostureState, asset_id)
    if state is None:
        state = PostureState(asset_id=asset_id, not_checked={})
        session.add(state)
    return state


def _collect(connection: dict, password: str | None, timeout: float, budget) -> dict:
    def connect():
        try:
            return psycopg2.connect(postgres_dsn(connection, password), connect_timeout=max(1, int(timeout)),
                                    application_name="dbmon-posture",
                                    options=f"-c statement_timeout={int(timeout * 1000)}")
        except psycopg2.Error as exc:
            raise DbmonError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None

    with budget.connection(server_key(connection), "posture check", connect) as conn:
        try:
            return collect(conn, same_host=is_local_host(connection.get("host")))
        except psycopg2.Error as exc:
            raise DbmonError(f"reading the catalogue failed: {_first_line(exc)}") from None
        except (TypeError, ValueError):
            # Something speaking the protocol without PostgreSQL's settings: retrying will not help.
            raise DbmonError("the server did not report a PostgreSQL version (server_version_num)",
                             permanent=True) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def run_check(rt, asset_id: int, *, now: datetime | None = None) -> dict:
    """Collect one server's facts and open or resolve findings. `now` is the injectable clock."""
    releases = release_list(rt.settings)  # a broken list fails the run before anything is recorded
    with rt.store.session() as s:
        _, name, connection, password = login_target(s, asset_id, rt.credentials)
        _state(s, asset_id).attempted_at = now or utcnow()
    try:
        facts = _collect(connection, password, rt.settings.probe_timeout, rt.connection_budget)
    except BudgetExhausted:
        raise  # deferred: the server has no slot to spare; not a failure of the target
    except DbmonError as exc:
        with rt.store.session() as s:
            _state(s, asset_id).last_error = exc.message
            _report(rt, s, asset_id, name, exc.message)
        raise
    now = now or utcnow()
    posture = evaluate(facts, releases, now)
    for attempt in (1, 2):
        try:
            with rt.store.session() as s:
                opened, resolved = apply(s, asset_id, name, posture, facts, releases, now)
                _report(rt, s, asset_id, name, None)
            break
        except IntegrityError:
            # A concurrent check of this asset stored the same finding first; compare with its result.
            if attempt == 2:
                raise
    return {"asset_id": asset_id, "findings": sorted(f.id for f in posture.findings), "opened": opened,
            "resolved": resolved, "not_checked": posture.not_checked,
            "release_list": release_list_view(releases.as_of.isoformat(), now.date())}


def _report(rt, session, asset_id: int, name: str, error: str | None) -> None:
    record_attempt(session, Attempt("posture", asset_subject(asset_id), asset_id, name, error),
                   failures_before_event=rt.settings.collector_failures_before_event)


def _opened_event(session, asset_id: int, name: str, f: Finding, context: dict) -> None:
    record_event(session, type="posture.finding_opened", severity=f.severity, asset_id=asset_id,
                 summary=f"{name}: {f.title}", payload={"finding": f.id, **f.as_dict(), **context})


def _resolved_event(session, asset_id: int, name: str, finding: str, title: str, context: dict,
                    reason: str = "no longer found") -> None:
    record_event(session, type="posture.finding_resolved", severity="info", asset_id=asset_id,
                 summary=f"{name}: resolved: {title}",
                 payload={"finding": finding, "title": title, "reason": reason, **context})


def apply(session, asset_id: int, name: str, posture: Posture, facts: dict, releases: ReleaseList,
          now) -> tuple[list[str], list[str]]:
    """Store this check's findings; return the ids opened and resolved by it."""
    context = {"release_list_as_of": releases.as_of.isoformat(), "server_version": facts.get("server_version")}
    stored = {row.finding: row for row in session.execute(
        select(PostureFinding.finding, PostureFinding.severity, PostureFinding.title)
        .where(PostureFinding.asset_id == asset_id))}
    found = {f.id: f for f in posture.findings}
    opened, resolved = [], []
    for fid, f in found.items():
        row = stored.get(fid)
        values = dict(severity=f.severity, title=f.title, detail=f.detail, remediation=f.remediation, last_seen_at=now)
        if row is None:
            session.add(PostureFinding(asset_id=asset_id, finding=fid, opened_at=now, **values))
            session.flush()  # a concurrent check that got here first makes this fail, not announce twice
            _opened_event(session, asset_id, name, f, context)
            opened.append(fid)
            continue
        session.execute(update(PostureFinding).where(PostureFinding.asset_id == asset_id,
                                                     PostureFinding.finding == fid).values(**values))
        if row.severity != f.severity:
            # Said as resolved-then-opened, so a rule on the new severity fires and one on the old clears.
            _resolved_event(session, asset_id, name, fid, row.title, context, reason=f"severity now {f.severity}")
            _opened_event(session, asset_id, name, f, context)
            opened.append(fid)
    for fid, row in stored.items():
        if fid in found:
            continue
        gone = session.execute(delete(PostureFinding).where(PostureFinding.asset_id == asset_id,
                                                            PostureFinding.finding == fid))
        if gone.rowcount == 1:  # else a concurrent check already resolved (and announced) it
            _resolved_event(session, asset_id, name, fid, row.title, context)
            resolved.append(fid)
    state = _state(session, asset_id)
    state.checked_at, state.last_error = now, None
    state.server_version = facts.get("server_version")
    state.release_list_as_of = releases.as_of.isoformat()
    state.not_checked = dict(posture.not_checked)
    return opened, resolved


def checkable_assets(rt) -> list[int]:
    with rt.store.session() as s:
        rows = s.execute(select(Asset.id, Asset.engine, Asset.connection).where(
            Asset.engine == "postgresql", Asset.kind == "database",
            or_(Asset.status.is_(None), Asset.status != "gone")).order_by(Asset.id)).all()
    return [asset_id for asset_id, engine, connection in rows if loginable(engine, connection)]


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """PostgreSQL assets whose slot in DBMON_POSTURE_INTERVAL passed since their last attempt."""
    ids = checkable_assets(rt)
    if not ids:
        return []
    now = now or utcnow()
    with rt.store.session() as s:
        attempted = {asset_id: at for asset_id, at in s.execute(select(
            PostureState.asset_id, PostureState.attempted_at).where(PostureState.asset_id.in_(ids)))}
    return [i for i in ids if spread.is_due(i, rt.settings.posture_interval, attempted.get(i), now)]
