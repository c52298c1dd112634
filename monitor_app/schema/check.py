"""One schema check of one asset: the body of the `schema.check` task, free of Celery.

Scheduled checks read the cheap pre-check marker first and stop there when it is unchanged;
checks started by a notification or a file event always snapshot (the marker would only
confirm what the notification said). Where the config allows a trigger, every check verifies
it (`trigger_upkeep`) and, where dbmon is superuser, installs or repairs it on the way, so the
next change is seen at once.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg2
from psycopg2.extensions import make_dsn
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from monitor_app.assets.config_assets import password_for
from monitor_app.assets.connection_budget import BudgetExhausted, server_key, server_key_from_dsn
from monitor_app.platform.collector_health import Attempt, asset_subject, record_attempt
from monitor_app.errors import DbmonError, NotFound
from monitor_app.platform import spread
from monitor_app.platform.event_log import record_event
from monitor_app.assets.pg_transport import libpq_params
from monitor_app.schema import compatibility, postgres_snapshot, precheck, sqlite_snapshot
from monitor_app.schema.history import latest_snapshot, record_check
from monitor_app.schema.trigger_upkeep import keep_trigger, record_trigger_event
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.schema import SchemaWatchState

log = logging.getLogger("dbmon.schema")
ENGINES = ("postgresql", "sqlite", "mysql", "mariadb")
MYSQL_ENGINES = ("mysql", "mariadb")


def postgres_dsn(connection: dict, password: str | None) -> str:
    return make_dsn(**libpq_params(connection, password))


def _state(session, asset_id: int) -> SchemaWatchState:
    state = session.get(SchemaWatchState, asset_id)
    if state is None:
        state = SchemaWatchState(asset_id=asset_id, trigger_installed=False, open_mismatches=[])
        session.add(state)
    return state


def run_check(rt, asset_id: int, context: dict | None = None, *, now: datetime | None = None) -> dict:
    """Snapshot one asset, store what changed. `now` stamps the check (the clock is injectable)."""
    context = dict(context or {"source": "scheduled"})
    context.setdefault("source", "scheduled")
    with rt.store.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None or asset.status == "gone" or asset.engine not in ENGINES:
            raise NotFound(f"asset {asset_id} does not exist, is gone or has no schema to check")
        name, engine, connection = asset.name, asset.engine, dict(asset.connection)
        password = password_for(asset, rt.credentials)
        state = _state(s, asset_id)
        last_marker, has_baseline = state.marker, latest_snapshot(s, asset_id) is not None
        was_installed = bool(state.trigger_installed)
    settings = rt.config.schema_checks
    # A trailing check after a burst usually finds nothing new, nor does the catch-up of a listener
    # that (re)started without notifications: the pre-check settles that cheaply.
    catch_up = bool(context.get("reconnected")) and not context.get("notifications")
    skip_if_unchanged = (context["source"] == "scheduled" or bool(context.get("trailing")) or catch_up) \
        and has_baseline
    try:
        if engine == "postgresql":
            snapshot, marker, trigger = _postgres(postgres_dsn(connection, password), settings.trigger_allowed(name),
                                                  was_installed, last_marker, skip_if_unchanged,
                                                  audit_as=(rt.store, f"asset:{name}"), budget=rt.connection_budget)
        elif engine in MYSQL_ENGINES:
            snapshot, marker, trigger = _mysql(connection, password, last_marker, skip_if_unchanged,
                                               timeout=rt.settings.probe_timeout, budget=rt.connection_budget)
        else:
            snapshot, marker, trigger = _sqlite(connection["path"], last_marker, skip_if_unchanged)
    except BudgetExhausted:
        raise  # deferred: the server has no slot to spare; not a failure of the target
    except DbmonError as exc:
        with rt.store.session() as s:
            _state(s, asset_id).last_error = exc.message
            _report(rt, s, asset_id, name, exc.message)
        raise
    if snapshot is None:
        with rt.store.session() as s:
            state = _state(s, asset_id)
            state.checked_at, state.last_error = now or utcnow(), None
            _store_trigger(s, state, asset_id, name, trigger)
            _report(rt, s, asset_id, name, None)
        return {"asset_id": asset_id, "skipped": "pre-check marker unchanged", "changed": False}

    expected_spec = settings.for_asset(name).expected
    for attempt in (1, 2):
        try:
            with rt.store.session() as s:
                outcome = record_check(s, asset_id, name, snapshot, context)
                state = _state(s, asset_id)
                state.marker, state.checked_at, state.last_error = marker, now or utcnow(), None
                _store_trigger(s, state, asset_id, name, trigger)
                _report(rt, s, asset_id, name, None)
                mismatches = _compatibility(s, asset_id, name, state, expected_spec, snapshot, outcome.version)
            break
        except IntegrityError:
            # A concurrent check stored this version first; diff against it instead.
            if attempt == 2:
                raise
    result = dict(outcome.as_dict(), asset_id=asset_id, source=context["source"])
    result["new_mismatches"] = mismatches
    if trigger is not None:
        result["trigger"] = trigger.action
    return result


def _report(rt, session, asset_id: int, name: str, error: str | None) -> None:
    """Each attempt's outcome; a failure streak becomes schema.check_failed once (see collector_health)."""
    record_attempt(session, Attempt("schema", asset_subject(asset_id), asset_id, name, error),
                   failures_before_event=rt.settings.collector_failures_before_event)


def _store_trigger(session, state: SchemaWatchState, asset_id: int, name: str, trigger) -> None:
    if trigger is None:
        return
    state.trigger_installed = trigger.installed
    record_trigger_event(session, asset_id, name, trigger)


def _postgres(dsn: str, trigger_allowed: bool, was_installed: bool, last_marker: str | None,
              skip_if_unchanged: bool, *, audit_as, budget):
    with budget.connection(server_key_from_dsn(dsn), "schema check", lambda: postgres_snapshot.connect(dsn)) as conn:
        try:
            conn.autocommit = True
            trigger = keep_trigger(conn, was_installed, audit_as=audit_as) if trigger_allowed else None
            marker = precheck.postgres_marker(conn)
            if skip_if_unchanged and marker == last_marker:
                return None, marker, trigger
            return postgres_snapshot.take_snapshot(conn), marker, trigger
        except psycopg2.Error as exc:
            # The server went away or refused a query mid-check: a failed check, not a crashed task.
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DbmonError(f"PostgreSQL error during the schema check: {first[:500]}") from None


def _mysql(connection: dict, password: str | None, last_marker: str | None, skip_if_unchanged: bool, *,
           timeout: float, budget):
    """One short session in one of the server's budgeted slots (the asset's TLS and password rules,
    a statement timeout, read-only): the marker first, a snapshot only when it moved. MySQL has no
    event trigger to push changes, so a short interval with this pre-check is how a change is seen
    within seconds."""
    import pymysql

    from monitor_app.assets import mysql_transport

    try:
        with budget.connection(server_key(connection, "mysql"), "schema check",
                               lambda: mysql_transport.connect(connection, password, timeout=timeout),
                               engine="mysql") as conn:
            return _mysql_check(conn, last_marker, skip_if_unchanged)
    except pymysql.MySQLError as exc:  # only connecting raises it here: the check's own errors are wrapped
        raise DbmonError(f"cannot connect to {connection.get('host')}:{connection.get('port')}: "
                         f"{mysql_transport.describe_error(exc)}") from None


def _mysql_check(conn, last_marker: str | None, skip_if_unchanged: bool):
    import pymysql

    from monitor_app.assets import mysql_transport
    from monitor_app.schema import mysql_connection, mysql_precheck, mysql_snapshot

    try:
        mysql_connection.bound_session(conn)
        marker = mysql_precheck.mysql_marker(conn)
        if skip_if_unchanged and marker == last_marker:
            return None, marker, None
        return mysql_snapshot.take_snapshot(conn), marker, None
    except pymysql.MySQLError as exc:
        raise DbmonError(f"MySQL error during the schema check: {mysql_transport.describe_error(exc)}") from None


def _sqlite(path: str, last_marker: str | None, skip_if_unchanged: bool):
    try:
        marker = precheck.sqlite_marker(path)
    except OSError as exc:
        raise DbmonError(f"SQLite file {path}: {exc.strerror}", permanent=False) from None
    if skip_if_unchanged and marker == last_marker:
        return None, marker, None
    return sqlite_snapshot.take_snapshot(path), marker, None


def _compatibility(session, asset_id: int, name: str, state: SchemaWatchState, spec: str | None,
                   snapshot: dict, version: int) -> int:
    """Record a `schema.mismatch` event for each mismatch that was not already open."""
    if not spec:
        state.open_mismatches = []
        return 0
    try:
        expected = compatibility.load_expected(spec, snapshot["engine"])
    except DbmonError as exc:
        state.last_error = exc.message
        return 0
    found = compatibility.check(expected, snapshot)
    open_before = set(state.open_mismatches or [])
    new = 0
    for m in found:
        key = f"{m['kind']}:{m['object']}"
        if key in open_before:
            continue
        new += 1
        record_event(session, type="schema.mismatch", severity=m["severity"], asset_id=asset_id,
                     summary=f"{name}: {m['why']} (expected by {expected.source})",
                     payload=dict(m, expected_source=expected.source, version=version),
                     dedupe_key=f"schema.mismatch:{asset_id}:{version}:{key}"[:255])
    state.open_mismatches = sorted(f"{m['kind']}:{m['object']}" for m in found)
    return new


def due_assets(rt, now: datetime | None = None) -> list[int]:
    """Database assets whose scheduled check is due: each asset at its own slot in its interval
    (interval from the config, slot from `platform.spread`), so checks do not bunch up."""
    settings = rt.config.schema_checks
    now = now or utcnow()
    with rt.store.session() as s:
        rows = s.execute(
            select(Asset.id, Asset.name, Asset.engine, Asset.connection, SchemaWatchState.checked_at)
            .outerjoin(SchemaWatchState, SchemaWatchState.asset_id == Asset.id)
            .where(Asset.engine.in_(ENGINES), Asset.kind == "database",
                   or_(Asset.status.is_(None), Asset.status != "gone")).order_by(Asset.id)).all()
    # A discovered PostgreSQL container without credentials has no database to log into yet; a
    # MySQL asset is checked one database at a time, so it needs one named (and a user).
    return [asset_id for asset_id, name, engine, connection, checked in rows
            if (engine not in ("postgresql",) + MYSQL_ENGINES or (connection or {}).get("database"))
            and (engine not in MYSQL_ENGINES or (connection or {}).get("user"))
            and spread.is_due(asset_id, settings.interval_for(name), checked, now)]
