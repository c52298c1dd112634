"""The posture check as the task runs it: stored findings, events only on change, the API view."""

from __future__ import annotations

import json
import os

import psycopg2
import pytest
from sqlalchemy import select

from monitor_app.access.api_keys import create_key
from monitor_app.errors import ConfigError, DbmonError
from monitor_app.posture.check import due_assets, run_check
from monitor_app.platform.scan_kinds import SCAN_KINDS
from monitor_app.store.models import Event
from monitor_app.store.models.posture import PostureFinding, PostureState
from tests.schema.conftest import add_asset, make_runtime, pg_connection


# test_shared_server creates posture_* roles, and every check of the shared server sees them while
# they exist, whichever session created them: a parallel worker or another run on the same server.
def not_a_shared_server_test_role(finding: str) -> bool:
    return ":posture_" not in finding


def events(store, asset_id: int) -> list[Event]:
    with store.session() as s:
        found = s.scalars(select(Event).where(Event.asset_id == asset_id, Event.type.like("posture.%"))
                          .order_by(Event.id))
        return [e for e in found if not_a_shared_server_test_role(e.payload.get("finding", ""))]


def stored(store, asset_id: int) -> set[str]:
    with store.session() as s:
        found = s.scalars(select(PostureFinding.finding).where(PostureFinding.asset_id == asset_id))
        return set(filter(not_a_shared_server_test_role, found))


def grant(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def test_findings_are_stored_and_each_change_is_one_event(store, tmp_path, pg_database):
    name, url = pg_database
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="appdb", engine="postgresql", connection=pg_connection(url))
    assert due_assets(rt) == [asset_id]
    first = run_check(rt, asset_id)
    baseline = stored(store, asset_id)
    assert set(filter(not_a_shared_server_test_role, first["findings"])) == baseline and due_assets(rt) == []
    assert {e.payload["finding"] for e in events(store, asset_id)} == baseline
    assert {e.type for e in events(store, asset_id)} <= {"posture.finding_opened"}

    run_check(rt, asset_id)
    assert len(events(store, asset_id)) == len(baseline)  # nothing changed, nothing said

    grant(url, "GRANT CREATE ON SCHEMA public TO PUBLIC")
    result = run_check(rt, asset_id)
    new = events(store, asset_id)[len(baseline):]
    assert [(e.type, e.severity, e.payload["finding"]) for e in new] == [
        ("posture.finding_opened", "warning", "public_schema_create")]
    assert list(filter(not_a_shared_server_test_role, result["opened"])) == ["public_schema_create"]
    assert list(filter(not_a_shared_server_test_role, result["resolved"])) == []
    assert new[0].payload["remediation"].startswith("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    assert new[0].payload["release_list_as_of"]

    grant(url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    run_check(rt, asset_id)
    last = events(store, asset_id)[len(baseline) + 1:]
    assert [(e.type, e.severity, e.payload["finding"]) for e in last] == [
        ("posture.finding_resolved", "info", "public_schema_create")]
    assert stored(store, asset_id) == baseline


def test_an_unreachable_asset_keeps_its_findings_and_records_the_error(store, tmp_path, pg_database):
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="gone-db", engine="postgresql",
                         connection={"host": "127.0.0.1", "port": 1, "database": "x", "user": "x",
                                     "sslmode": "disable", "insecure": True})
    with pytest.raises(DbmonError) as info:
        run_check(rt, asset_id)
    assert not info.value.permanent
    with store.session() as s:
        assert "cannot connect" in s.get(PostureState, asset_id).last_error
    # No finding opened or resolved; the failure itself is said once (see collector health).
    assert [e.type for e in events(store, asset_id)] == ["posture.check_failed"]


def test_sqlite_assets_are_not_posture_checked(store, tmp_path):
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="cache", engine="sqlite", connection={"path": str(tmp_path / "x.db")})
    assert due_assets(rt) == []
    with pytest.raises(DbmonError):
        run_check(rt, asset_id)


def test_posture_is_a_scan_kind():
    kind = SCAN_KINDS["posture"]
    assert kind.task == "posture.check" and kind.asset == "optional"


def test_the_api_shows_current_findings_to_viewers(store, tmp_path, pg_database):
    from api import create_app

    name, url = pg_database
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="appdb", engine="postgresql", connection=pg_connection(url))
    grant(url, "GRANT CREATE ON SCHEMA public TO PUBLIC")
    run_check(rt, asset_id)
    with store.session() as s:
        key = {"X-API-Key": create_key(s, name="v", role="viewer")[1]}
    client = create_app(rt).test_client()
    assert client.get(f"/api/v1/posture/assets/{asset_id}").status_code == 401
    resp = client.get(f"/api/v1/posture/assets/{asset_id}", headers=key)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert body["asset_id"] == asset_id and body["checked_at"] and body["last_error"] is None
    assert body["release_list"]["as_of"] and "age_days" in body["release_list"]
    public = next(f for f in body["findings"] if f["id"] == "public_schema_create")
    assert set(public) >= {"id", "severity", "title", "detail", "remediation", "opened_at", "last_seen_at"}
    listing = client.get("/api/v1/posture/findings?severity=warning", headers=key).json
    assert any(f["asset_id"] == asset_id and f["id"] == "public_schema_create" for f in listing["items"])
    assert client.get("/api/v1/posture/findings?severity=bogus", headers=key).status_code == 400
    assert client.get(f"/api/v1/posture/findings?asset_id={-2**120}", headers=key).status_code == 400
    assert client.get("/api/v1/posture/assets/999999", headers=key).status_code == 404


def test_a_severity_change_is_said_as_resolved_then_opened(store, tmp_path, exposed_cluster):
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="exposed", engine="postgresql", connection=exposed_cluster.connection())
    first = run_check(rt, asset_id)
    assert "data_directory_permissions" in first["opened"]
    before = len(events(store, asset_id))
    os.chmod(exposed_cluster.data, 0o757)
    try:
        result = run_check(rt, asset_id)
    finally:
        os.chmod(exposed_cluster.data, 0o755)
    new = events(store, asset_id)[before:]
    assert [(e.type, e.severity, e.payload["finding"]) for e in new] == [
        ("posture.finding_resolved", "info", "data_directory_permissions"),
        ("posture.finding_opened", "critical", "data_directory_permissions")]
    assert new[0].payload["reason"] == "severity now critical" and "0757" in new[1].payload["detail"]
    assert result["opened"] == ["data_directory_permissions"] and result["resolved"] == []


def test_the_release_list_setting_is_used_and_named_in_the_event(store, tmp_path, exposed_cluster):
    major, minor = divmod(exposed_cluster.server_version_num(), 10000)
    newer = tmp_path / "releases.json"
    newer.write_text(json.dumps({"as_of": "2026-11-30", "branches": {str(major): {
        "latest": f"{major}.{minor + 3}", "released": "2026-11-30", "end_of_life": "2099-01-01"}}}))
    rt = make_runtime(store, tmp_path)
    rt.settings = rt.settings.model_copy(update={"posture_release_list": newer})
    asset_id = add_asset(store, name="exposed", engine="postgresql", connection=exposed_cluster.connection())
    result = run_check(rt, asset_id)
    assert "minor_release_behind" in result["opened"] and result["release_list"]["as_of"] == "2026-11-30"
    (event,) = [e for e in events(store, asset_id) if e.payload["finding"] == "minor_release_behind"]
    assert event.payload["release_list_as_of"] == "2026-11-30" and "release list of 2026-11-30" in event.payload["detail"]

    rt.settings = rt.settings.model_copy(update={"posture_release_list": tmp_path / "missing.json"})
    with pytest.raises(ConfigError) as info:
        run_check(rt, asset_id)
    assert info.value.permanent and "missing.json" in info.value.message


def test_beat_looks_for_due_checks_at_most_every_five_minutes(tmp_path):
    from beat_schedule import entries
    from monitor_app.config.settings import load_settings

    daily = entries(load_settings(_env_file=None, data_dir=tmp_path))["posture-checks"]
    assert daily["task"] == "posture.check_due" and daily["schedule"] == 300 and daily["options"]["queue"] == "posture"
    fast = entries(load_settings(_env_file=None, data_dir=tmp_path, posture_interval=30))["posture-checks"]
    assert fast["schedule"] == 30
