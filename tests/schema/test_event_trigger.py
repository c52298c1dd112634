"""The event trigger notifies on committed DDL only, never breaks DDL, and bursts coalesce."""

from __future__ import annotations

import select
import threading
import time

import psycopg2
import pytest

from monitor_app.schema import event_trigger, notifications
from monitor_app.schema.diff import diff
from monitor_app.schema.listener import TRAILING_CHECK_SECONDS, Coalescer, SchemaListener
from monitor_app.schema.notifications import Received
from monitor_app.schema.precheck import postgres_marker
from tests.schema.conftest import PgScratch, caught_up
from tests.services import role_name


@pytest.fixture()
def watched(pg_database):
    """A database with the trigger installed and a separate LISTENing connection."""
    url = pg_database[1]
    event_trigger.install(url)
    listener = psycopg2.connect(url)
    listener.autocommit = True
    listener.cursor().execute(f"LISTEN {event_trigger.CHANNEL}")
    db = PgScratch(url)
    yield db, listener
    listener.close()
    db.close()


def drain(conn, wait: float = 0.3) -> list[dict]:
    """The notifications within `wait` s: the tag each names and the pid the server says sent it."""
    deadline, notes = time.monotonic() + wait, []
    while time.monotonic() < deadline:
        if select.select([conn], [], [], 0.05) != ([], [], []):
            conn.poll()
            notes.extend({"tag": notifications.read(n.payload).tag, "pid": n.pid, "payload": n.payload}
                         for n in conn.notifies)
            conn.notifies.clear()
    return notes


def backend_pid(db) -> int:
    with db.conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_it_notifies_the_bare_tag_from_the_session_that_ran_the_ddl(watched):
    db, listener = watched
    db.run("SET application_name = 'migrate-42'", "CREATE TABLE t (id integer)")
    assert drain(listener) == [{"tag": "CREATE TABLE", "pid": backend_pid(db), "payload": "CREATE TABLE"}]
    db.run("DROP TABLE t")
    assert [(n["payload"], n["pid"]) for n in drain(listener)] == [("DROP TABLE", backend_pid(db))]


def test_a_migration_in_one_transaction_notifies_each_distinct_tag_once_at_commit(watched):
    db, listener = watched
    db.conn.autocommit = False
    with db.conn.cursor() as cur:
        for i in range(50):
            cur.execute(f"CREATE TABLE m_{i} (id integer)")
            cur.execute(f"ALTER TABLE m_{i} ADD COLUMN name text")
        cur.execute("CREATE INDEX m_0_name ON m_0 (name)")
    assert drain(listener, 0.2) == []  # nothing before the commit
    db.conn.commit()
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE", "ALTER TABLE", "CREATE INDEX"]
    # What a rolled-back savepoint sent is forgotten with it.
    with db.conn.cursor() as cur:
        cur.execute("SAVEPOINT before")
        cur.execute("CREATE TABLE undone (id integer)")
        cur.execute("COMMENT ON TABLE m_3 IS 'undone'")
        cur.execute("ROLLBACK TO SAVEPOINT before")
        cur.execute("ALTER TABLE m_1 ADD COLUMN kept text")
        cur.execute("SAVEPOINT kept")
        cur.execute("DROP TABLE m_2")
        cur.execute("RELEASE SAVEPOINT kept")
        cur.execute("ALTER TABLE m_3 ADD COLUMN kept text")
    db.conn.commit()
    assert [n["tag"] for n in drain(listener)] == ["ALTER TABLE", "DROP TABLE"]
    # A rolled-back transaction sends nothing.
    with db.conn.cursor() as cur:
        cur.execute("CREATE TABLE never (id integer)")
        cur.execute("DROP TABLE m_4")
    db.conn.rollback()
    db.conn.autocommit = True
    assert drain(listener) == []


def test_the_trigger_sets_no_setting(watched):
    """Setting anything inside a transaction makes PostgreSQL before 16 walk all its settings at
    every nested level the transaction leaves afterwards: the trigger sets none, anywhere."""
    db, listener = watched
    ours = "SELECT count(*) FROM pg_settings WHERE name LIKE 'dbmon.%'"
    db.run("CREATE TABLE quiet_autocommit (id integer)")
    db.conn.autocommit = False
    with db.conn.cursor() as cur:
        cur.execute("CREATE TABLE quiet_settings (id integer)")
        cur.execute(ours)
        assert cur.fetchone()[0] == 0
    db.conn.commit()
    db.conn.autocommit = True
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE", "CREATE TABLE"]
    with db.conn.cursor() as cur:
        cur.execute(ours)
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT provolatile FROM pg_proc WHERE oid = %s::regprocedure", (f"{event_trigger.FUNCTION}()",))
        assert cur.fetchone()[0] == "s"  # no snapshot taken per call


def test_every_autocommitted_ddl_statement_notifies(watched):
    db, listener = watched
    db.run(*(f"CREATE TABLE n_{i} (id integer)" for i in range(20)))
    notes = drain(listener)
    assert [n["tag"] for n in notes] == ["CREATE TABLE"] * 20
    assert {n["pid"] for n in notes} == {backend_pid(db)}
    db.run("ALTER TABLE n_0 ADD COLUMN name text")
    assert [n["tag"] for n in drain(listener)] == ["ALTER TABLE"]
    # Statements of one simple-query string share their implicit transaction: one per distinct tag.
    db.run("CREATE TABLE q_1 (id integer); CREATE TABLE q_2 (id integer); ALTER TABLE q_1 ADD COLUMN name text; "
           "DROP TABLE n_1")
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE", "ALTER TABLE", "DROP TABLE"]
    other = PgScratch(db.url)
    try:
        db.run("CREATE TABLE mine (id integer)")
        other.run("CREATE TABLE theirs (id integer)")
        assert len({n["pid"] for n in drain(listener)}) == 2
    finally:
        other.close()


def test_an_explicit_transaction_notifies_at_commit(watched):
    db, listener = watched
    db.conn.autocommit = False
    with db.conn.cursor() as cur:
        cur.execute("CREATE TABLE in_transaction (id integer)")
        cur.execute("ALTER TABLE in_transaction ADD COLUMN name text")
    db.conn.commit()
    with db.conn.cursor() as cur:
        cur.execute("DROP TABLE in_transaction")
    db.conn.rollback()
    db.conn.autocommit = True
    db.run("CREATE TABLE after_rollback (id integer)")
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE", "ALTER TABLE", "CREATE TABLE"]
    # A transaction that wrote before its DDL notifies the same way.
    db.conn.autocommit = False
    with db.conn.cursor() as cur:
        cur.execute("INSERT INTO after_rollback VALUES (1)")
        cur.execute("CREATE TABLE after_a_write (id integer)")
        cur.execute("ALTER TABLE after_a_write ADD COLUMN name text")
    db.conn.commit()
    db.conn.autocommit = True
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE", "ALTER TABLE"]


def test_a_failed_autocommitted_statement_sends_nothing_and_silences_nothing(watched):
    db, listener = watched
    for i in range(5):
        with pytest.raises(psycopg2.errors.DivisionByZero):
            db.run(f"CREATE TABLE undone_{i} (id integer); SELECT 1/0")
        db.run(f"CREATE TABLE done_{i} (id integer)")
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE"] * 5
    with db.conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'undone\\_%'")
        assert cur.fetchone()[0] == 0


def test_a_setting_of_an_earlier_release_silences_nothing(watched):
    """The release before notified an autocommitting session once per window recorded in
    `dbmon.notified_in`; a value left as a database default means nothing now."""
    db, listener = watched
    with db.conn.cursor() as cur:
        cur.execute("SELECT current_database(), floor(extract(epoch FROM clock_timestamp()) / 0.25)::bigint")
        name, now = cur.fetchone()
    for stamp in (now, now + 1, "junk"):
        db.run(f"ALTER DATABASE {name} SET dbmon.notified_in = '{stamp}'")
        fresh = PgScratch(db.url)
        try:
            fresh.run(f"CREATE TABLE defaulted_{abs(hash(stamp))} (id integer)")
        finally:
            fresh.close()
        assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE"], stamp
    db.run(f"ALTER DATABASE {name} RESET dbmon.notified_in")


def test_it_is_silent_for_rolled_back_and_failed_ddl(watched):
    db, listener = watched
    db.conn.autocommit = False
    with db.conn.cursor() as cur:
        cur.execute("CREATE TABLE never (id integer)")
    db.conn.rollback()
    with pytest.raises(psycopg2.errors.DuplicateTable):
        with db.conn.cursor() as cur:
            cur.execute("CREATE TABLE half (id integer)")
            cur.execute("CREATE TABLE half (id integer)")
    db.conn.rollback()
    db.conn.autocommit = True
    assert drain(listener) == []
    # ...and ANALYZE, VACUUM, plain DML are not DDL at all.
    db.run("CREATE TABLE t (id integer)")
    drain(listener)
    db.run("INSERT INTO t VALUES (1)", "ANALYZE t", "VACUUM t")
    assert drain(listener) == []


def test_it_never_breaks_the_users_ddl_and_works_for_non_superusers(watched):
    db, listener = watched
    dev_role = role_name("dbmon_test_dev")
    db.run(f"CREATE ROLE {dev_role} LOGIN", f"GRANT CREATE ON SCHEMA public TO {dev_role}")
    drain(listener)
    try:
        dev = psycopg2.connect(db.url, user=dev_role)
        dev.autocommit = True
        with dev.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            dev_pid = cur.fetchone()[0]
            cur.execute("CREATE TABLE dev_table (id integer)")
            # The trigger function is ours alone: the user cannot call or change it.
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"SELECT {event_trigger.FUNCTION}()")
        dev.close()
        assert [(n["tag"], n["pid"]) for n in drain(listener)] == [("CREATE TABLE", dev_pid)]
    finally:
        db.run(f"DROP OWNED BY {dev_role}", f"DROP ROLE {dev_role}")


def test_it_swallows_a_failing_notification(watched):
    db, listener = watched
    # Make pg_notify fail inside the trigger (payload too large) and check the DDL still commits.
    db.run("CREATE OR REPLACE FUNCTION _dbmon.notify_schema_change() RETURNS event_trigger LANGUAGE plpgsql "
           "SECURITY DEFINER AS $$ BEGIN BEGIN PERFORM pg_notify('dbmon_schema', repeat('x', 9000)); "
           "EXCEPTION WHEN OTHERS THEN NULL; END; END $$")
    db.run("CREATE TABLE survives (id integer)")
    with db.conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.survives') IS NOT NULL")
        assert cur.fetchone()[0] is True
    event_trigger.install(db.url)  # the real function back


def test_it_does_not_fire_under_replica_role_but_the_marker_moves(watched):
    db, listener = watched
    marker = postgres_marker(db.conn)
    db.run("SET session_replication_role = replica", "CREATE TABLE replicated (id integer)",
           "RESET session_replication_role")
    assert drain(listener) == []
    assert postgres_marker(db.conn) != marker


def test_it_is_not_part_of_the_schema_and_uninstalls_cleanly(pg_database):
    db = PgScratch(pg_database[1])
    try:
        before = db.snapshot()
        event_trigger.install(db.url)
        event_trigger.install(db.url)  # idempotent
        assert event_trigger.installed(db.conn)
        assert diff(before, db.snapshot()) == []
        assert event_trigger.uninstall(db.url) is True
        assert not event_trigger.installed(db.conn)
        with db.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = '_dbmon'")
            assert cur.fetchone()[0] == 0
        assert event_trigger.uninstall(db.url) is False
    finally:
        db.close()


def test_it_refuses_to_install_without_superuser(pg_database):
    db = PgScratch(pg_database[1])
    plain_role = role_name("dbmon_test_plain")
    db.run(f"CREATE ROLE {plain_role} LOGIN")
    try:
        with pytest.raises(event_trigger.TriggerError, match="needs a superuser"):
            event_trigger.install(psycopg2.connect(db.url, user=plain_role))
    finally:
        db.run(f"DROP ROLE {plain_role}")
        db.close()


def received(tag: str) -> Received:
    return Received(tag)


def test_coalescer_waits_for_quiet_but_not_forever():
    c = Coalescer(quiet=0.1, max_wait=0.5)
    assert c.take_due(0.0) is None and c.wait_time(0.0) is None
    c.add(received("CREATE TABLE"), 0.0, sender=11)
    c.add(received("ALTER TABLE"), 0.05, sender=11)
    assert c.take_due(0.1) is None
    batch = c.take_due(0.16)
    assert batch.notifications == 2 and batch.tags == ["CREATE TABLE", "ALTER TABLE"] and batch.senders == [11]
    for i in range(10):  # a stream that never pauses still gets released at max_wait
        c.add(received("DROP TABLE"), 1.0 + i * 0.08)
    assert c.take_due(1.5) is not None


def test_coalescer_adds_a_trailing_batch_the_window_after_the_last_notification():
    c = Coalescer(quiet=0.1, max_wait=0.5, trailing=1.0)
    c.add(received("CREATE TABLE"), 0.0)
    assert c.take_due(0.1).notifications == 1
    assert c.wait_time(0.1) == pytest.approx(1.0)
    assert c.take_due(1.0) is None
    c.add(received("ALTER TABLE"), 0.9)  # a notification meanwhile moves the trailing batch
    assert c.take_due(1.0).tags == ["ALTER TABLE"]
    assert c.take_due(1.1) is None and c.take_due(1.99) is None
    trailing = c.take_due(2.0)
    assert trailing.trailing and trailing.notifications == 0 and trailing.as_context()["trailing"] is True
    assert c.take_due(10.0) is None and c.wait_time(10.0) is None
    late = Coalescer(quiet=0.1, max_wait=0.5, trailing=1.0)
    late.add(received("CREATE TABLE"), 0.0)
    assert late.take_due(5.0) is not None and late.wait_time(5.0) is None  # released after the window


def test_the_trailing_batch_names_the_bursts_tags_and_senders_but_counts_no_notification():
    c = Coalescer(quiet=0.1, max_wait=0.5, trailing=1.0)
    c.add(received("CREATE TABLE"), 0.0, sender=11)
    c.add(Received("DROP TABLE", earlier_release=True), 0.05, sender=12)  # any accepted notification is followed
    assert c.take_due(0.2).notifications == 2
    trailing = c.take_due(1.2)
    context = trailing.as_context()
    assert context["trailing"] is True and context["notifications"] == 0
    assert (context["command_tags"], trailing.senders) == (["CREATE TABLE", "DROP TABLE"], [11, 12])
    trailing.attribute({11: ("deploy", "migrate")})
    context = trailing.as_context()
    assert (context["users"], context["application_names"]) == (["deploy"], ["migrate"])
    assert context["attribution"]["ended_sessions"] == 1
    assert context["attribution"]["sessions"] == [{"pid": 11, "user": "deploy", "application_name": "migrate"},
                                                  {"pid": 12, "ended": True}]
    assert c.take_due(1.5) is None
    # The next burst's trailing batch names only that burst.
    c.add(received("ALTER TABLE"), 3.0, sender=13)
    c.take_due(3.2)
    assert c.take_due(4.2).senders == [13]


@pytest.mark.slow
def test_a_burst_of_autocommitted_ddl_ends_with_a_check_that_sees_its_last_statement(watched):
    """Every statement notifies, the batches coalesce them, and the last check, the trailing one,
    comes after the last statement committed and sees it."""
    db, _ = watched
    seen, done = [], threading.Event()
    probe = psycopg2.connect(db.url)
    probe.autocommit = True

    def on_batch(batch):
        with probe.cursor() as cur:  # what a check started now would find
            cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'burst\\_%' AND relkind = 'r'")
            seen.append((batch, cur.fetchone()[0]))
        if batch.trailing:
            done.set()

    listener = SchemaListener(db.url, on_batch, quiet=0.05, max_wait=0.5)
    listener.start()
    try:
        assert listener.listening.wait(5)
        caught_up(seen)
        started = time.monotonic()
        for i in range(300):
            db.run(f"CREATE TABLE burst_{i} (id integer)")
        elapsed = time.monotonic() - started
        assert done.wait(10)
        time.sleep(TRAILING_CHECK_SECONDS + 0.3)  # nothing more comes
    finally:
        listener.stop()
        probe.close()
    assert sum(batch.notifications for batch, _ in seen) == 300
    assert seen[0][0].tags == ["CREATE TABLE"] and seen[0][0].users == ["postgres"]
    trailing = [(batch, count) for batch, count in seen if batch.trailing]
    # A statement slowed past the trailing delay by a loaded machine leaves a gap in which a
    # trailing check may also run mid-burst; the last check is always the trailing one, and sees it all.
    assert trailing and seen[-1] == trailing[-1] and trailing[-1][1] == 300
    # Batches are released only after a quiet gap or the maximum wait, so far fewer than statements.
    assert len(seen) <= elapsed / 0.05 + len(trailing) + 1 and len(seen) < 300


def test_a_single_ddl_is_checked_promptly_then_once_more_a_while_after(watched):
    db, _ = watched
    batches = []
    listener = SchemaListener(db.url, lambda b: batches.append((time.monotonic(), b)), quiet=0.05, max_wait=0.5)
    listener.start()
    try:
        assert listener.listening.wait(5)
        caught_up(batches)
        committed = time.monotonic()
        db.run("CREATE TABLE single (id integer)")
        deadline = time.monotonic() + 5
        while len(batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        listener.stop()
    (first_at, first), (trailing_at, trailing) = batches
    assert first.notifications == 1 and first.tags == ["CREATE TABLE"] and first_at - committed < 0.5
    assert trailing.trailing and trailing.notifications == 0
    assert trailing_at - committed >= TRAILING_CHECK_SECONDS


def test_the_listener_asks_for_a_check_when_it_starts_and_after_each_reconnect(watched):
    """Notifications sent while nobody listened are lost, a watcher restart included: each time
    listening starts, a check is asked for at once."""
    db, _ = watched
    batches = []
    listener = SchemaListener(db.url, batches.append, quiet=0.05, max_wait=0.2, max_backoff=0.5)
    started = time.monotonic()
    listener.start()
    try:
        assert listener.listening.wait(5)
        deadline = time.monotonic() + 5
        while not batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [(b.reconnected, b.notifications, b.trailing) for b in batches] == [(True, 0, False)]
        assert time.monotonic() - started < 2
        assert batches[0].as_context()["reconnected"] is True
        db.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = 'dbmon-listener' AND datname = current_database()")
        deadline = time.monotonic() + 10
        while len(batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.stop()
    assert len(batches) == 2 and batches[1].reconnected and listener.failures == 1


def test_the_trailing_batch_waits_while_a_sender_is_in_a_transaction():
    c = Coalescer(quiet=0.05, max_wait=0.5, trailing=0.25)
    c.add(received("CREATE TABLE"), 0.0, sender=4242)
    assert c.take_due(0.05).notifications == 1 and c.senders == {4242}
    assert not c.trailing_due(0.2) and c.trailing_due(0.3)
    assert c.postpone_trailing(0.3)  # the listener found the sender inside a transaction
    assert not c.trailing_due(0.5) and c.trailing_due(0.55)
    assert c.postpone_trailing(0.55) and c.wait_time(0.55) == pytest.approx(0.5)  # backing off
    for step in range(10):
        c.postpone_trailing(1.0 + step)
    assert c.wait_time(11.0) <= 2.0
    trailing = c.take_due(20.0)
    assert trailing.trailing and c.senders == set() and c.wait_time(20.0) is None
    c.add(received("ALTER TABLE"), 30.0, sender=7)
    c.take_due(30.1)
    assert c.postpone_trailing(30.3) and not c.postpone_trailing(30.3 + 3600)  # followed at most an hour


HELD_TABLE = "SELECT to_regclass('public.held') IS NOT NULL"
HELD_INDEX_VALID = "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.held')), false)"


def _checks_after(db, statements, seen_query: str = HELD_TABLE) -> list[tuple[float, bool, bool]]:
    """(when, trailing, what `seen_query` says) for each batch a listener released while
    `statements(db)` ran and for a while after."""
    seen = []
    probe = psycopg2.connect(db.url)
    probe.autocommit = True

    def on_batch(batch):
        with probe.cursor() as cur:  # what a check started now would find
            cur.execute(seen_query)
            seen.append((time.monotonic(), batch.trailing, cur.fetchone()[0]))

    listener = SchemaListener(db.url, on_batch, quiet=0.05, max_wait=0.5)
    listener.start()
    try:
        assert listener.listening.wait(5)
        caught_up(seen)
        statements(db)
        ended = time.monotonic()
        deadline = ended + 5
        while not any(at >= ended and held for at, _, held in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.stop()
        probe.close()
    return [(at - ended, trailing, held) for at, trailing, held in seen]


@pytest.mark.slow
def test_a_concurrent_index_build_is_checked_once_it_has_finished(watched):
    """CREATE INDEX CONCURRENTLY commits its first internal transaction, which delivers the
    notification, before it builds the index, then waits for other writers: the first check
    sees an invalid index, and the trailing check waits for the build to finish."""
    db, listener = watched
    db.run("CREATE TABLE built (id integer)")
    drain(listener)
    writer = psycopg2.connect(db.url)

    def build_behind_a_writer(db):
        with writer.cursor() as cur:
            cur.execute("INSERT INTO built VALUES (1)")  # an open writer the build must wait for
        release = threading.Timer(1.5, writer.commit)
        release.start()
        try:
            db.run("CREATE INDEX CONCURRENTLY held ON built (id)")
        finally:
            release.join()

    try:
        checks = _checks_after(db, build_behind_a_writer, HELD_INDEX_VALID)
    finally:
        writer.close()
    assert [n["tag"] for n in drain(listener)] == ["CREATE INDEX"]
    assert any(at < 0 for at, _, _ in checks) and not any(valid for at, _, valid in checks if at < 0), checks
    assert [(trailing, valid) for at, trailing, valid in checks if at >= 0] == [(True, True)], checks


@pytest.mark.slow
def test_an_explicit_transaction_after_a_notification_is_checked_after_its_commit(watched):
    """A transaction block notifies at its commit: the check follows it."""
    db, listener = watched

    def opener_then_held_transaction(db):
        db.run("CREATE TABLE opener (id integer)")
        db.conn.autocommit = False
        with db.conn.cursor() as cur:
            cur.execute("CREATE TABLE held (id integer)")
        time.sleep(1.0)
        db.conn.commit()
        db.conn.autocommit = True

    checks = _checks_after(db, opener_then_held_transaction)
    assert [n["tag"] for n in drain(listener)] == ["CREATE TABLE", "CREATE TABLE"]
    assert not any(held for at, _, held in checks if at < 0)
    assert [held for at, _, held in checks if at >= 0][:1] == [True], checks
