"""Anyone connected to a monitored database can NOTIFY dbmon's channel: hostile payloads are
dropped, the listener keeps working, and who sent a notification is what the server says of
the sending session, whatever the payload claims."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest
from sqlalchemy import select as sa_select

from api import create_app
from monitor_app.access.api_keys import create_key
from monitor_app.schema import event_trigger, notifications
from monitor_app.schema.check import run_check
from monitor_app.schema.listener import SchemaListener
from monitor_app.store.models import Event
from tests.schema.conftest import add_asset, make_runtime, pg_connection
from tests.services import role_name

GOOD_SHAPE = '{"tag": "CREATE TABLE", "event": "ddl_command_end", "user": %s}'
HOSTILE = {
    "array": "[1]",
    "empty object": "{}",
    "null": "null",
    "empty": "",
    "string": '"CREATE TABLE"',
    "lower case": "x",
    "a tag and more": "CREATE TABLE; DROP TABLE",
    "spaces around": " CREATE TABLE",
    "two spaces": "CREATE  TABLE",
    "control characters in a tag": "CREATE\nTABLE",
    "escape sequence": "\x1b[31mDROP DATABASE",
    "long tag": "CREATE " * 10 + "TABLE",
    "huge": "x" * 7999,
    "huge tag": "A" * 7999,
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
    "json with a tag that is none": '{"tag": "drop everything", "event": "ddl_command_end"}',
    "bad signature prefix": "v1.not-hex.{}",
    "not json": "\ufffe\U0001f4a5 DROP DATABASE",
    "truncated": '{"tag": "CREATE',
}
# What the triggers of earlier releases sent: still a hint to check, with its tag.
EARLIER_PAYLOADS = {
    "signed": "v1." + "0" * 64 + '.{"tag":"ALTER TABLE","event":"ddl_command_start","user":"postgres","pid":1}',
    "unsigned": '{"tag": "DROP TABLE", "event": "ddl_command_end", "object": "public.orders", "user": "postgres"}',
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


def backend_pid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_hostile_payloads_never_stop_the_listener(listening):
    db, mallory, listener, recorder = listening
    for payload in HOSTILE.values():
        mallory.notify(payload)
    db.run("CREATE TABLE still_detected (id integer)")
    batch = recorder.wait_for(lambda b: b.notifications > 0)
    assert batch.tags == ["CREATE TABLE"] and batch.notifications == 1
    assert batch.users == ["postgres"] and [s["pid"] for s in batch.sessions] == [backend_pid(db.conn)]
    assert listener.is_alive() and listener.listening.is_set()
    assert listener.rejected == len(HOSTILE) and listener.failures == 0


def test_a_notification_is_attributed_to_the_role_that_sent_it_not_to_whom_it_claims(listening):
    db, mallory, listener, recorder = listening
    with mallory.conn.cursor() as cur:
        cur.execute("SET application_name = 'mallory-tool'")
        cur.execute(f"NOTIFY {event_trigger.CHANNEL}, 'x'")  # not a command tag: dropped
        cur.execute(f"NOTIFY {event_trigger.CHANNEL}, 'DROP TABLE'")
    batch = recorder.wait_for(lambda b: b.notifications > 0)
    context = batch.as_context()
    assert (context["notifications"], context["command_tags"]) == (1, ["DROP TABLE"])
    assert (context["users"], context["application_names"]) == ([mallory.role], ["mallory-tool"])
    assert context["attribution"]["sessions"] == [
        {"pid": backend_pid(mallory.conn), "user": mallory.role, "application_name": "mallory-tool"}]
    assert listener.rejected == 1
    # Claims in an earlier release's payload change nothing: the server names the sender.
    recorder.batches.clear()
    for payload in EARLIER_PAYLOADS.values():
        mallory.notify(payload)
    batch = recorder.wait_for(lambda b: b.notifications == 2)
    context = batch.as_context()
    assert context["command_tags"] == ["ALTER TABLE", "DROP TABLE"]
    assert (context["users"], context["application_names"]) == ([mallory.role], ["mallory-tool"])
    assert context["attribution"]["earlier_release_payloads"] == 2
    # The trigger's own notification is attributed the same way, to the session that ran the DDL.
    recorder.batches.clear()
    db.run("SET application_name = 'deploy-9'", "CREATE TABLE genuine (id integer)")
    genuine = recorder.wait_for(lambda b: "deploy-9" in b.application_names).as_context()
    assert genuine["users"] == ["postgres"] and genuine["command_tags"] == ["CREATE TABLE"]


def test_a_forged_notification_is_stored_and_served_under_its_real_sender(listening, sqlite_store, tmp_path):
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
    batch = recorder.wait_for(lambda b: mallory.role in b.users)
    outcome = run_check(rt, asset_id, batch.as_context())
    assert outcome["changed"]
    with sqlite_store.session() as s:
        event = s.scalar(sa_select(Event).where(Event.type == "schema.changed"))
        _, key = create_key(s, name="reader", role="viewer")
    context = event.payload["context"]
    assert context["users"] == [mallory.role] and "deploy_bot" not in str(context)
    client = create_app(rt).test_client()
    history = client.get(f"/api/v1/schema/assets/{asset_id}/history", headers={"X-API-Key": key}).get_json()
    served = history["items"][0]["change_set"]["context"]
    assert served["users"] == [mallory.role] and served["attribution"]["by"] == "server"


def test_a_listener_of_a_plain_role_names_the_senders_too(listening):
    """pg_stat_activity shows every session's user and application name to any role."""
    db, mallory, _, _ = listening
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(db.url)
    as_mallory = urlunparse(parsed._replace(netloc=f"{mallory.role}@{parsed.hostname}:{parsed.port or 5432}"))
    recorder = Recorder()
    plain = SchemaListener(as_mallory, recorder, quiet=0.05, max_wait=0.3)
    plain.start()
    try:
        assert plain.listening.wait(5)
        db.run("SET application_name = 'migrate-3'", "CREATE TABLE seen_by_a_plain_role (id integer)")
        context = recorder.wait_for(lambda b: "CREATE TABLE" in b.tags).as_context()
    finally:
        plain.stop()
    assert (context["users"], context["application_names"]) == (["postgres"], ["migrate-3"])


def test_a_sender_whose_session_ended_is_counted_not_named(pg):
    event_trigger.install(pg.url)
    recorder = Recorder()
    listener = SchemaListener(pg.url, recorder, quiet=0.5, max_wait=1.0)
    listener.start()
    try:
        assert listener.listening.wait(5)
        brief = psycopg2.connect(pg.url, application_name="gone-soon")
        brief.autocommit = True
        brief.cursor().execute("CREATE TABLE from_a_brief_session (id integer)")
        brief.close()
        context = recorder.wait_for(lambda b: b.notifications > 0).as_context()
    finally:
        listener.stop()
    assert context["command_tags"] == ["CREATE TABLE"] and context["users"] == []
    assert context["attribution"]["ended_sessions"] == 1 and context["attribution"]["sessions"][0]["ended"] is True


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_payload_that_is_no_command_tag_is_rejected(name):
    with pytest.raises(notifications.RejectedNotification):
        notifications.read(HOSTILE[name])


def test_a_command_tag_and_an_earlier_releases_payload_are_read_as_hints():
    for tag in ("CREATE TABLE", "ALTER DEFAULT PRIVILEGES", "REFRESH MATERIALIZED VIEW", "COMMENT"):
        read = notifications.read(tag)
        assert (read.tag, read.earlier_release) == (tag, False)
    assert [(r.tag, r.earlier_release) for r in map(notifications.read, EARLIER_PAYLOADS.values())] == \
        [("ALTER TABLE", True), ("DROP TABLE", True)]
