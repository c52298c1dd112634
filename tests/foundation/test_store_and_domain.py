"""Domain core on both store backends: events, audit, keys, config assets, probes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from monitor_app.access import audit
from monitor_app.access.api_keys import Principal, authenticate, create_key, revoke
from monitor_app.assets.config_assets import password_for, sync_config_assets
from monitor_app.config.declarative import parse_config
from monitor_app.access.credential_box import CredentialBox
from monitor_app.errors import DbmonError
from monitor_app.platform import spread
from monitor_app.platform.event_log import record_event
from monitor_app.platform.task_ledger import LeasePolicy, Ledger
from monitor_app.assets.reachability import ProbeResult, apply_probe, probe_postgres, probe_sqlite
from monitor_app.store.base import utcnow
from monitor_app.store.models import ApiKey, Asset, AuditEntry, Event, TaskRun
from tests.peers import closed_port

BOX = CredentialBox("unit-test-key")


def test_it_stores_an_event_once_per_dedupe_key(store):
    with store.session() as s:
        first = record_event(s, type="asset.down", severity="critical", dedupe_key="k1", payload={"a": 1})
        again = record_event(s, type="asset.down", severity="critical", dedupe_key="k1")
    assert first is not None and again is None
    with store.session() as s:
        [event] = s.scalars(select(Event)).all()
        assert event.payload == {"a": 1} and event.detected_at.tzinfo is not None


def test_it_rejects_an_unknown_severity(store):
    with store.session() as s, pytest.raises(DbmonError):
        record_event(s, type="x", severity="apocalyptic")


def test_it_tells_listeners_about_new_events_only_after_commit(store):
    seen: list[list[int]] = []
    store.event_listeners.append(seen.append)
    with pytest.raises(RuntimeError):
        with store.session() as s:
            record_event(s, type="rolled.back")
            raise RuntimeError("abort the unit of work")
    assert seen == []
    with store.session() as s:
        ids = [record_event(s, type="a").id, record_event(s, type="b").id]
    assert seen == [ids]


def test_it_keeps_only_a_hash_of_api_keys_and_honours_role_order(store):
    with store.session() as s:
        row, plain = create_key(s, name="ops", role="operator")
    with store.session() as s:
        stored = s.get(ApiKey, row.id)
        assert plain not in (stored.key_hash, stored.prefix) and plain.startswith(stored.prefix)
        who = authenticate(s, plain)
    assert who == Principal("key:ops", "operator")
    assert who.allows("viewer") and who.allows("operator") and not who.allows("admin")
    with store.session() as s:
        assert authenticate(s, plain + "x") is None
        assert revoke(s, row.id) and not revoke(s, row.id)
    with store.session() as s:
        assert authenticate(s, plain) is None
    with store.session() as s, pytest.raises(DbmonError):
        create_key(s, name="x", role="root")


def test_it_writes_audit_entries(store):
    with store.session() as s:
        audit.record(s, actor="cli", action="scan.request", target="host", detail={"id": "1"})
    with store.session() as s:
        entry = s.scalar(select(AuditEntry))
    assert (entry.actor, entry.action, entry.outcome, entry.detail) == ("cli", "scan.request", "ok", {"id": "1"})


def test_it_syncs_config_assets_and_never_stores_passwords_in_clear(store, monkeypatch):
    monkeypatch.setenv("ORDERS_PW", "hunter2-secret")
    config = parse_config({"assets": [
        {"name": "orders", "engine": "postgresql", "host": "db1", "database": "orders", "user": "mon",
         "password_env": "ORDERS_PW", "labels": {"team": "pay"}},
        {"name": "cache", "engine": "sqlite", "path": "/srv/cache.db"},
    ]})
    with store.session() as s:
        result = sync_config_assets(s, config, BOX)
    assert sorted(result.added) == ["cache", "orders"] and result.errors == []
    with store.session() as s:
        orders = s.scalar(select(Asset).where(Asset.name == "orders"))
        assert "hunter2-secret" not in repr(orders.connection) and b"hunter2-secret" not in orders.secret
        assert password_for(orders, BOX) == "hunter2-secret"
        assert orders.labels == {"team": "pay"}

    smaller = parse_config({"assets": [{"name": "orders", "engine": "postgresql", "host": "db2",
                                        "database": "orders", "user": "mon", "password_env": "ORDERS_PW"}]})
    with store.session() as s:
        result = sync_config_assets(s, smaller, BOX)
    assert (result.updated, result.removed) == (["orders"], ["cache"])
    with store.session() as s:
        assert s.scalar(select(Asset.status).where(Asset.name == "cache")) == "gone"
    with store.session() as s:
        result = sync_config_assets(s, config, BOX)
    assert sorted(result.updated) == ["cache", "orders"]
    with store.session() as s:
        assert s.scalar(select(Asset.status).where(Asset.name == "cache")) == "unknown"


def test_a_missing_password_variable_is_reported_but_the_asset_still_registers(store, monkeypatch):
    monkeypatch.delenv("NOPE_PW", raising=False)
    config = parse_config({"assets": [{"name": "x", "engine": "postgresql", "host": "h", "database": "d",
                                       "password_env": "NOPE_PW"}]})
    with store.session() as s:
        result = sync_config_assets(s, config, BOX)
    assert result.added == ["x"] and "NOPE_PW is not set" in result.errors[0]


def test_a_credential_sealed_with_another_key_is_a_clear_error():
    token = CredentialBox("old").seal({"password": "p"})
    with pytest.raises(DbmonError, match="DBMON_SECRET_KEY"):
        CredentialBox("new").open(token)


def test_it_probes_a_real_postgresql_and_a_refusing_port(connection_budget):
    up = probe_postgres({"host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "postgres",
                         "insecure": True}, None, 5, connection_budget)
    assert up.up and up.server_version and up.latency_ms > 0
    down = probe_postgres({"host": "127.0.0.1", "port": closed_port(), "database": "postgres", "user": "postgres"},
                          None, 2, connection_budget)
    assert not down.up and "refused" in down.error.lower()


def test_it_probes_sqlite_files_read_only(tmp_path):
    import sqlite3

    path = tmp_path / "app.db"
    sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.commit()
    assert probe_sqlite({"path": str(path)}, 2).up
    missing = probe_sqlite({"path": str(tmp_path / "absent.db")}, 2)
    assert not missing.up and "does not exist" in missing.error
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert not probe_sqlite({"path": str(tmp_path / "junk.db")}, 2).up


def test_it_records_transitions_and_backs_off_a_failing_target(store):
    with store.session() as s:
        asset = Asset(kind="database", engine="postgresql", name="p", source="config", external_id="p",
                      labels={}, connection={}, details={})
        s.add(asset)
        s.flush()
        assert apply_probe(s, asset, ProbeResult(False, 1.0, "refused"), interval=10) == "down"
        first_gap = asset.next_check_at - asset.last_checked_at
        assert apply_probe(s, asset, ProbeResult(False, 1.0, "refused"), interval=10) is None
        second_gap = asset.next_check_at - asset.last_checked_at
        assert second_gap == 2 * first_gap == timedelta(seconds=20)
        assert apply_probe(s, asset, ProbeResult(True, 3.0, server_version="15"), interval=10) == "up"
        # Up again: back to its own slot in the interval (platform/spread.py), at most one interval away.
        assert asset.next_check_at == spread.next_slot(asset.id, 10, asset.last_checked_at)
        assert timedelta(0) < asset.next_check_at - asset.last_checked_at <= timedelta(seconds=10)
        types = [e.type for e in s.scalars(select(Event).order_by(Event.id))]
    assert types == ["asset.down", "asset.up"]


def test_a_claimed_run_cannot_be_claimed_twice_until_its_lease_expires(store):
    ledger = Ledger(store, LeasePolicy(running_lease=30, queued_grace=30))
    run_id = ledger.record("metrics.host_sample", {}, queue="metrics", kind="host", requested_by="me")
    args = dict(name="metrics.host_sample", kwargs={}, queue="metrics")
    assert ledger.claim(run_id, **args)
    assert not ledger.claim(run_id, **args)
    sent = []
    assert ledger.redeliver(lambda *a: sent.append(a)) == {"resent": 0, "gave_up": 0, "waiting": 0}
    assert ledger.redeliver(lambda *a: sent.append(a), now=utcnow() + timedelta(seconds=31))["resent"] == 1
    assert ledger.claim(run_id, **args)
    ledger.finish(run_id, {"ok": True})
    assert not ledger.claim(run_id, **args)
    run = ledger.get(run_id)
    assert (run.status, run.attempts, run.sends, run.result) == ("done", 2, 2, {"ok": True})


def test_a_run_sent_by_the_scheduler_is_adopted_by_the_ledger(store):
    ledger = Ledger(store)
    assert ledger.claim("beat-run-1", name="metrics.host_sample", kwargs={}, queue="metrics")
    assert ledger.get("beat-run-1").status == "running"


def test_a_retry_requeues_and_a_failure_is_recorded(store):
    ledger = Ledger(store, LeasePolicy(queued_grace=5))
    run_id = ledger.record("x.y", {}, queue="metrics")
    ledger.claim(run_id, name="x.y", kwargs={}, queue="metrics")
    ledger.requeue(run_id, "ProbeError: refused", countdown=10)
    run = ledger.get(run_id)
    assert run.status == "queued" and run.lease_until > utcnow() + timedelta(seconds=14)
    ledger.fail(run_id, "gave up")
    assert ledger.get(run_id).status == "failed"


def test_a_fan_out_records_its_runs_in_one_batch_and_publishes_each(store, tmp_path):
    from monitor_app.store.models import TaskRun
    from tests.schema.conftest import make_runtime

    rt = make_runtime(store, tmp_path)
    sent = []
    rt._sender = lambda *message: sent.append(message)
    run_ids = rt.dispatch_many("schema.check", [{"asset_id": i} for i in range(1, 251)], requested_by="beat")
    assert len(set(run_ids)) == 250
    assert [(name, kwargs, run_id, queue) for name, kwargs, run_id, queue in sent] == [
        ("schema.check", {"asset_id": i}, run_id, "schema") for i, run_id in zip(range(1, 251), run_ids, strict=True)]
    with store.session() as s:
        rows = {r.id: r for r in s.scalars(select(TaskRun).where(TaskRun.id.in_(run_ids)))}
    assert {(r.status, r.name, r.queue, r.requested_by, r.sends) for r in rows.values()} == {
        ("queued", "schema.check", "schema", "beat", 1)}
    assert [rows[r].kwargs for r in run_ids] == [{"asset_id": i} for i in range(1, 251)]
    assert rt.dispatch_many("schema.check", []) == []


def test_a_fan_out_stops_publishing_when_the_broker_is_down_and_redelivery_sends_the_rest(store, tmp_path):
    from tests.schema.conftest import make_runtime

    rt = make_runtime(store, tmp_path)
    tries = []

    def down(*message):
        tries.append(message)
        raise ConnectionError("broker down")

    rt._sender = down
    run_ids = rt.dispatch_many("schema.check", [{"asset_id": i} for i in range(1, 11)])
    assert len(tries) == 1  # not ten waits on a dead broker
    assert {rt.ledger.get(r).status for r in run_ids} == {"queued"}
    resent = []
    later = utcnow() + timedelta(seconds=rt.settings.task_queued_grace + 1)
    assert rt.ledger.redeliver(lambda *m: resent.append(m[2]), now=later)["resent"] >= 10
    assert set(run_ids) <= set(resent)


def test_a_queued_run_behind_a_moving_backlog_waits_its_turn_and_one_skipped_is_sent_again(store):
    ledger = Ledger(store, LeasePolicy(queued_grace=60))
    start = utcnow()
    backlog = [ledger.record("schema.check", {"asset_id": i}, queue="schema") for i in range(4)]
    args = dict(name="schema.check", queue="schema")
    later = start + timedelta(seconds=61)
    # The queue is moving: the oldest run started just now; the others wait, nothing is sent twice.
    with store.session() as s:
        s.execute(update(TaskRun).where(TaskRun.id == backlog[0])
                  .values(status="running", started_at=later, lease_until=later + timedelta(seconds=30)))
    sent = []
    assert ledger.redeliver(lambda *a: sent.append(a[2]), now=later) == {"resent": 0, "gave_up": 0, "waiting": 3}
    assert {ledger.get(r).sends for r in backlog} == {1}

    # A run sent after backlog[1] started first: backlog[1] was skipped (lost) and is sent again.
    ledger.finish(backlog[0], None)
    newer = ledger.record("schema.check", {"asset_id": 9}, queue="schema")
    even_later = later + timedelta(seconds=61)
    with store.session() as s:
        s.execute(update(TaskRun).where(TaskRun.id == newer).values(
            status="running", started_at=even_later, requested_at=later + timedelta(seconds=1),
            lease_until=even_later + timedelta(seconds=30)))
    assert ledger.redeliver(lambda *a: sent.append(a[2]), now=even_later)["resent"] == 3
    assert set(sent) == set(backlog[1:])
    assert ledger.claim(backlog[1], kwargs={"asset_id": 1}, **args)


def test_a_queue_where_nothing_started_for_a_grace_period_has_its_overdue_runs_sent_again(store):
    ledger = Ledger(store, LeasePolicy(queued_grace=60))
    run_id = ledger.record("schema.check", {"asset_id": 1}, queue="schema")
    sent = []
    result = ledger.redeliver(lambda *a: sent.append(a[2]), now=utcnow() + timedelta(seconds=61))
    assert result == {"resent": 1, "gave_up": 0, "waiting": 0} and sent == [run_id]


def test_a_fan_out_skips_assets_whose_previous_run_is_still_pending(store, tmp_path):
    from tests.schema.conftest import make_runtime
    from workers.task_base import fan_out

    rt = make_runtime(store, tmp_path)
    sent = []
    rt._sender = lambda *message: sent.append(message[1]["asset_id"])
    assert fan_out(rt, "schema.check", [1, 2, 3])["dispatched"] == 3
    first = {m.kwargs["asset_id"]: m.id for m in _runs(store, "schema.check")}
    rt.ledger.claim(first[1], name="schema.check", kwargs={"asset_id": 1}, queue="schema")
    rt.ledger.finish(first[2], None)
    again = fan_out(rt, "schema.check", [1, 2, 3, 4])
    assert (again["asset_ids"], again["already_pending"]) == ([2, 4], 2)
    assert sent == [1, 2, 3, 2, 4]
    assert fan_out(rt, "posture.check", [1])["dispatched"] == 1  # another task's runs are its own


def _runs(store, name: str):
    with store.session() as s:
        return s.scalars(select(TaskRun).where(TaskRun.name == name)).all()
