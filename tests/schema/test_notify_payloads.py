"""Anyone connected to a monitored database can NOTIFY dbmon's channel: hostile payloads are
dropped, the listener keeps working, and attribution it cannot verify is marked so."""

from __future__ import annotations

import select
import threading
import time

import psycopg2
import pytest
from sqlalchemy import select as sa_select

from api import create_app
from monitor_app.access.api_keys import create_key
from monitor_app.schema import event_trigger
from monitor_app.schema.check import run_check
from monitor_app.schema.listener import SchemaListener
from monitor_app.store.models import Event
from tests.schema.conftest import PgScratch, add_asset, make_runtime, next_window, pg_connection
from tests.services import role_name

GOOD_SHAPE = '{"tag": "CREATE TABLE", "event": "ddl_command_end", "user": %s}'
HOSTILE = {
    "array": "[1]",
    "empty object": "{}",
    "null": "null",
    "string": '"CREATE TABLE"',
    "huge": "x" * 7999,
    "huge valid json": '{"tag": "CREATE TABLE", "event": "ddl_command_end", "object": "%s"}' % ("a" * 7000),
    "lone surrogate": GOOD_SHAPE % '"\\ud800"',
    "lone low surrogate": '{"tag": "\\udc80", "event": "sql_drop"}',
    "nul escape": GOOD_SHAPE % '"evil\\u0000"',
    "control characters": GOOD_SHAPE % '"line\\nbreak"',
    "deeply nested": "[" * 3990 + "]" * 3990,
    "nested in a field": GOOD_SHAPE % ("[" * 3000 + "]" * 3000),
    "wrong types": '{"tag": ["CREATE TABLE"], "event": 1, "objects": "many"}',
    "negative count": '{"tag": "CREATE TABLE", "event": "ddl_command_end", "objects": -1}',
    "huge number": '{"tag": "CREATE TABLE", "event": "ddl_command_end", "objects": 1e999999}',
    "unknown event": '{"tag": "CREATE TABLE", "event": "table_rewrite"}',
    "bad signature prefix": "v1.not-hex.{}",
    "not json": "\ufffe\U0001f4a5 DROP DATABASE",
    "truncated": '{"tag": "CREATE',
}


class Mallory:
    """A plain user of the monitored database: may connect, create tables and NOTIFY."""

    def __init__(self, url: str, admin):
        self.role = role_name("dbmon_test_mallory")
        admin.run(f"CREATE ROLE {self.role} LOGIN",
                  f"GRANT CREATE ON SCHEMA public TO {self.role}")
        self.conn = psycopg2.connect(url, user=self.role)
        self.conn.autocommit = True

    def notify(self, payload: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_notify(%s, %s)", (event_trigger.CHANNEL, payload))

    def close(self, admin) -> None:
        self.conn.close()
        admin.run(f"DROP OWNED BY {self.role}", f"DROP ROLE {self.role}")


class Recorder:
    def __init__(self):
        self.batches, self.arrived = [], threading.Event()

    def __call__(self, batch) -> None:
        self.batches.append(batch)
        self.arrived.set()

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [b for b in self.batches if predicate(b)]
            if found:
                return found[0]
            self.arrived.wait(0.1)
            self.arrived.clear()
        raise AssertionError(f"no matching batch among {[b.as_context() for b in self.batches]}")


@pytest.fixture()
def listening(pg):
    event_trigger.install(pg.url)
    mallory = Mallory(pg.url, pg)
    recorder = Recorder()
    listener = SchemaListener(pg.url, recorder, quiet=0.05, max_wait=0.3, max_backoff=0.5)
    listener.start()
    try:
        assert listener.listening.wait(5)
        yield pg, mallory, listener, recorder
    finally:
        listener.stop()
        mallory.close(pg)


def test_hostile_payloads_never_stop_the_listener(listening):
    db, mallory, listener, recorder = listening
    for payload in HOSTILE.values():
        mallory.notify(payload)
    next_window()
    db.run("CREATE TABLE still_detected (id integer)")
    batch = recorder.wait_for(lambda b: b.verified > 0)
    assert batch.tags == ["CREATE TABLE"] and batch.notifications == 1
    assert listener.is_alive() and listener.listening.is_set()
    assert listener.rejected == len(HOSTILE) and listener.failures == 0


def capture_signed_payload(db) -> str:
    """What any user LISTENing on the channel sees of a real DDL's notification."""
    spy = psycopg2.connect(db.url)
    spy.autocommit = True
    spy.cursor().execute(f"LISTEN {event_trigger.CHANNEL}")
    next_window()
    db.run("CREATE TABLE replay_source (id integer)")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if select.select([spy], [], [], 0.1) != ([], [], []):
            spy.poll()
            if spy.notifies:
                payload = spy.notifies[0].payload
                spy.close()
                return payload
    spy.close()
    raise AssertionError("the trigger sent nothing")


def test_forged_and_replayed_attribution_is_marked_unverified(listening):
    db, mallory, listener, recorder = listening
    replayed = capture_signed_payload(db)
    recorder.wait_for(lambda b: b.verified > 0)
    recorder.batches.clear()
    mallory.notify('{"tag": "DROP TABLE", "event": "sql_drop", "object": "public.orders", "user": "postgres", '
                   '"application_name": "release-7", "at": "2020-01-01T00:00:00Z"}')
    mallory.notify(replayed)
    batch = recorder.wait_for(lambda b: b.notifications == 2)
    context = batch.as_context()
    assert context["users"] == [] and context["application_names"] == [] and context["first_at"] is None
    assert context["attribution"]["verified"] is False
    assert context["attribution"]["unverified_users"] == ["postgres"]
    assert context["attribution"]["unverified_application_names"] == ["release-7"]
    assert {"unsigned: any user of the database can send this",
            "signed, but re-sent by another session"} == set(context["attribution"]["unverified_because"])
    # The real trigger's notification, from the session that ran the DDL, is verified.
    recorder.batches.clear()
    next_window()
    db.run("SET application_name = 'deploy-9'", "CREATE TABLE genuine (id integer)")
    genuine = recorder.wait_for(lambda b: "deploy-9" in b.application_names).as_context()
    assert genuine["users"] == ["postgres"] and genuine["application_names"] == ["deploy-9"]
    assert genuine["attribution"]["verified"] is True and genuine["attribution"]["unverified_users"] == []


def test_a_forged_attribution_is_stored_and_served_as_unverified(listening, sqlite_store, tmp_path):
    db, mallory, listener, recorder = listening
    rt = make_runtime(sqlite_store, tmp_path, {"schema": {"event_triggers": True}})
    asset_id = add_asset(sqlite_store, name="orders-db", engine="postgresql", connection=pg_connection(db.url))
    run_check(rt, asset_id)
    # Mallory makes a change and claims the deploy pipeline did it.
    with mallory.conn.cursor() as cur:
        cur.execute("SET application_name = 'ci-deploy'")
        cur.execute("CREATE TABLE mallory_table (id integer)")
    mallory.notify('{"tag": "CREATE TABLE", "event": "ddl_command_end", "object": "public.mallory_table", '
                   '"user": "deploy_bot", "application_name": "ci-deploy"}')
    batch = recorder.wait_for(lambda b: "deploy_bot" in b.unverified_users)
    outcome = run_check(rt, asset_id, batch.as_context())
    assert outcome["changed"]
    with sqlite_store.session() as s:
        event = s.scalar(sa_select(Event).where(Event.type == "schema.changed"))
        _, key = create_key(s, name="reader", role="viewer")
    attribution = event.payload["context"]["attribution"]
    assert attribution["verified"] is False and "deploy_bot" in attribution["unverified_users"]
    assert "deploy_bot" not in event.payload["context"]["users"]
    client = create_app(rt).test_client()
    history = client.get(f"/api/v1/schema/assets/{asset_id}/history", headers={"X-API-Key": key}).get_json()
    served = history["items"][0]["change_set"]["context"]["attribution"]
    assert served["verified"] is False and "deploy_bot" in served["unverified_users"]


def test_a_reinstalled_trigger_with_a_new_key_still_verifies(listening, monkeypatch):
    from monitor_app.schema import listener as listener_module

    db, mallory, listener, recorder = listening
    monkeypatch.setattr(listener_module, "KEY_REREAD_SECONDS", 0.0)
    next_window()
    db.run("CREATE TABLE before_reinstall (id integer)")  # this session now reuses a payload signed with the old key
    recorder.wait_for(lambda b: b.verified > 0)
    recorder.batches.clear()
    event_trigger.uninstall(db.url)
    event_trigger.install(db.url)
    fresh = PgScratch(db.url)
    try:
        fresh.run("CREATE TABLE from_a_new_session (id integer)")  # signed with the new key
        context = recorder.wait_for(lambda b: b.notifications > 0).as_context()
    finally:
        fresh.close()
    assert context["attribution"]["verified"] is True and context["users"] == ["postgres"]
    recorder.batches.clear()
    next_window()
    db.run("CREATE TABLE after_reinstall (id integer)")  # still the old key's signature
    context = recorder.wait_for(lambda b: b.notifications > 0).as_context()
    assert context["attribution"]["verified"] is True and context["users"] == ["postgres"]


def test_a_listener_that_cannot_read_the_key_verifies_nothing(listening):
    db, mallory, _, _ = listening
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(db.url)
    as_mallory = urlunparse(parsed._replace(netloc=f"{mallory.role}@{parsed.hostname}:{parsed.port or 5432}"))
    recorder = Recorder()
    plain = SchemaListener(as_mallory, recorder, quiet=0.05, max_wait=0.3)
    plain.start()
    try:
        assert plain.listening.wait(5)
        next_window()
        db.run("CREATE TABLE seen_unverified (id integer)")
        context = recorder.wait_for(lambda b: "CREATE TABLE" in b.unverified_tags).as_context()
    finally:
        plain.stop()
    assert context["users"] == [] and context["attribution"]["unverified_users"] == ["postgres"]
    assert context["attribution"]["unverified_because"] == ["signed, but dbmon's role cannot read the trigger's key"]


def test_a_forged_cached_payload_still_reaches_the_check_marked_a_bad_signature(listening):
    """The trigger reuses a session setting the user can overwrite: a forgery there must neither
    verify nor silence the notification of the user's own DDL."""
    db, mallory, listener, recorder = listening
    with mallory.conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        body = ('{"tag":"CREATE TABLE","event":"ddl_command_start","user":"%s","application_name":"","pid":%d}'
                % (mallory.role, cur.fetchone()[0]))
        for forged in ("0" * 64 + ".", "z" * 64 + "!"):
            cur.execute("SELECT set_config('dbmon.notify_CREATE_TABLE', %s, false)",
                        (event_trigger.SIGNED_PREFIX + forged + body,))
            next_window()
            cur.execute("CREATE TABLE IF NOT EXISTS forged_cache (id integer)")
            context = recorder.wait_for(lambda b: b.notifications > 0).as_context()
            recorder.batches.clear()
            assert context["attribution"]["verified"] is False and context["users"] == []
            assert context["attribution"]["unverified_because"] == ["bad signature"]
            assert context["attribution"]["unverified_command_tags"] == ["CREATE TABLE"]
        # Anything but that shape is ignored and the payload signed afresh.
        cur.execute("SELECT set_config('dbmon.notify_CREATE_TABLE', 'v1.junk', false)")
        next_window()
        cur.execute("CREATE TABLE IF NOT EXISTS forged_cache (id integer)")
    context = recorder.wait_for(lambda b: b.notifications > 0).as_context()
    assert context["attribution"]["verified"] is True and context["users"] == [mallory.role]
