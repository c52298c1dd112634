"""/api/v1/files/*: watches, changes and backups as real scans on each store backend leave them,
read through the API with a viewer's key."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from glob import glob
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import select

from monitor_app.access.api_keys import create_key
from monitor_app.config.settings import load_settings
from monitor_app.files import watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.platform.runtime import Runtime
from monitor_app.store.base import utcnow
from monitor_app.store.models.files import FileWatch
from tests.services import create_pg_database, drop_pg_database, missing

CONF = "shared_buffers = 128MB\nprimary_conninfo = 'host=db1 user=rep password=hunter2-old'\n"


def _write_config(rt, watches: list[dict]) -> None:
    rt.settings.config_file.write_text(yaml.safe_dump({"watch": watches}))


@pytest.fixture()
def files_api(store, tmp_path):
    """An API over a store whose config file watches a config directory and a backup directory,
    both with their first scan done."""
    from api import create_app

    etc, backups = tmp_path / "etc", tmp_path / "backups"
    etc.mkdir()
    backups.mkdir()
    (etc / "postgresql.conf").write_text(CONF)
    (tmp_path / "data").mkdir()
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", database_url=store.url,
                             secret_key="files-api-test", config_file=tmp_path / "dbmon.yaml")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    watches = [{"path": str(etc), "kinds": ["config"]},
               {"path": str(backups), "kinds": ["backup"], "backup": {"settle": "60s"}}]
    _write_config(rt, watches)
    for watch_id in watch_sync.sync(rt)["baseline"]:
        run_scan(rt, watch_id, reason="baseline")
    with store.session() as s:
        ids = {Path(w.path).name: w.id for w in s.scalars(select(FileWatch))}
        key = create_key(s, name="viewer", role="viewer")[1]
    client = create_app(rt).test_client()

    def get(path: str, expect: int = 200, **params):
        resp = client.get(f"/api/v1/files/{path}", query_string=params, headers={"X-API-Key": key})
        assert resp.status_code == expect, (resp.status_code, resp.get_data(as_text=True)[:500])
        return resp.json

    return SimpleNamespace(client=client, rt=rt, get=get, etc=etc, backups=backups, watches=watches,
                           etc_id=ids["etc"], backups_id=ids["backups"], key=key)


def test_watches_are_listed_with_their_status_size_and_kinds(files_api):
    page = files_api.get("watches")
    assert page["total"] == 2
    by_id = {w["id"]: w for w in page["items"]}
    etc = by_id[files_api.etc_id]
    conf_size = (files_api.etc / "postgresql.conf").stat().st_size
    assert (etc["path"], etc["source"], etc["kinds"], etc["status"]) == (str(files_api.etc), "config", ["config"], "ok")
    assert (etc["entries"], etc["total_bytes"]) == (2, conf_size)
    assert etc["last_full_scan_at"] is not None and etc["unreadable"] == {}
    backups = by_id[files_api.backups_id]
    assert (backups["kinds"], backups["entries"], backups["total_bytes"]) == (["backup"], 1, 0)
    assert backups["backup"]["settle"] == 60
    assert files_api.get(f"watches/{files_api.etc_id}") == etc


def test_an_unknown_watch_is_404(files_api):
    assert "no watch" in files_api.get(f"watches/{files_api.backups_id + 1000}", expect=404)["message"]


def test_watches_filter_by_status_and_hide_removed_ones(files_api):
    shutil.rmtree(files_api.backups)
    assert "unavailable" in run_scan(files_api.rt, files_api.backups_id)

    def ids(**params):
        return [w["id"] for w in files_api.get("watches", **params)["items"]]

    assert ids(status="unavailable") == [files_api.backups_id]
    assert ids(status="ok") == [files_api.etc_id]
    assert files_api.get(f"watches/{files_api.backups_id}")["status_detail"] == "No such file or directory"

    _write_config(files_api.rt, files_api.watches[:1])
    assert watch_sync.sync(files_api.rt)["removed"] == [files_api.backups_id]
    assert ids() == [files_api.etc_id]
    assert ids(status="removed") == [files_api.backups_id]
    assert "status" in files_api.get("watches", expect=400, status="gone")["errors"]


def test_a_config_edit_is_a_change_with_its_parsed_diff_and_no_secret(files_api):
    conf = files_api.etc / "postgresql.conf"
    conf.write_text("# tuned\nshared_buffers = '256MB'\nprimary_conninfo = 'host=db1 user=rep password=s3cret-new'\n")
    run_scan(files_api.rt, files_api.etc_id)
    resp = files_api.client.get("/api/v1/files/changes", headers={"X-API-Key": files_api.key})
    assert "hunter2" not in resp.get_data(as_text=True) and "s3cret" not in resp.get_data(as_text=True)
    (change,) = resp.json["items"]
    assert (change["type"], change["path"], change["watch_id"]) == ("config_changed", str(conf), files_api.etc_id)
    diff = {d["parameter"]: d for d in change["diff"]}
    assert set(diff) == {"shared_buffers", "primary_conninfo"}
    buffers = diff["shared_buffers"]
    assert (buffers["old"], buffers["new"], buffers["restart_required"]) == ("128MB", "256MB", True)
    assert buffers["risk"] == "high" and change["severity"] == "warning"  # a restart is an outage
    assert change["old"]["sha256"] != change["new"]["sha256"]


def _changes_over_time(files_api) -> dict[str, object]:
    """Four reported changes, each scan a minute after the one before; returns their times."""
    t0 = utcnow()
    times = {}
    conf, notes, partial = files_api.etc / "postgresql.conf", files_api.etc / "notes.txt", files_api.backups / "x.tmp"

    def step(name: str, minute: int, watch_id: int, act) -> None:
        act()
        times[name] = t0 + timedelta(minutes=minute)
        run_scan(files_api.rt, watch_id, now=times[name])

    step("config_changed", 1, files_api.etc_id, lambda: conf.write_text(CONF.replace("128MB", "1GB")))
    step("created", 2, files_api.etc_id, lambda: notes.write_text("hello\n"))
    step("permissions_changed", 3, files_api.etc_id, lambda: notes.chmod(0o600))
    step("(arrival, not reported)", 4, files_api.backups_id, lambda: partial.write_bytes(b"x"))
    step("deleted", 5, files_api.backups_id, partial.unlink)
    return times


def test_changes_come_newest_first_filtered_and_paged(files_api):
    times = _changes_over_time(files_api)
    page = files_api.get("changes")
    types = [c["type"] for c in page["items"]]
    assert types == ["deleted", "permissions_changed", "created", "config_changed"]
    assert page["total"] == 4 and [c["id"] for c in page["items"]] == sorted((c["id"] for c in page["items"]),
                                                                            reverse=True)

    def types_of(**params):
        return [c["type"] for c in files_api.get("changes", **params)["items"]]

    assert types_of(watch_id=files_api.backups_id) == ["deleted"]
    assert types_of(watch_id=files_api.etc_id) == ["permissions_changed", "created", "config_changed"]
    assert types_of(type="created") == ["created"]
    assert types_of(type="created", watch_id=files_api.backups_id) == []
    since = times["created"].isoformat().replace("+00:00", "Z")
    assert types_of(since=since) == ["deleted", "permissions_changed", "created"]

    first, second = files_api.get("changes", per_page=3), files_api.get("changes", per_page=3, page=2)
    assert (first["total"], first["pages"], second["page"]) == (4, 2, 2)
    assert [c["type"] for c in first["items"] + second["items"]] == types
    assert files_api.get("changes", per_page=3, page=3)["items"] == []
    assert "type" in files_api.get("changes", expect=400, type="renamed")["errors"]


@pytest.fixture(scope="module")
def custom_dump(tmp_path_factory) -> Path:
    """A `pg_dump -Fc` of a small table in a throwaway database on the shared PostgreSQL."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/pg_dump"), key=lambda p: int(Path(p).parts[-3]))
    pg_dump = found[-1] if found else shutil.which("pg_dump")
    psql = shutil.which("psql")
    if pg_dump is None or psql is None:
        missing("pg_dump and psql")
    name, url = create_pg_database("dbmon_files_api")
    out = tmp_path_factory.mktemp("dump") / "nightly.dump"
    try:
        subprocess.run([psql, "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                        "CREATE TABLE orders (id int PRIMARY KEY, note text);"
                        "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 2000) g;"],
                       check=True, capture_output=True, timeout=30)
        subprocess.run([pg_dump, "-Fc", "-t", "orders", "-f", str(out), url], check=True, capture_output=True,
                       timeout=60)
    finally:
        drop_pg_database(name)
    return out


def test_a_backup_is_in_progress_then_completed_and_a_truncated_one_corrupt(files_api, custom_dump):
    def backups(**params):
        return {Path(b["path"]).name: b for b in files_api.get("backups", **params)["items"]}

    t0 = utcnow()
    shutil.copy(custom_dump, files_api.backups / "nightly.dump")
    run_scan(files_api.rt, files_api.backups_id, now=t0)
    assert backups()["nightly.dump"]["state"] == "in_progress"
    run_scan(files_api.rt, files_api.backups_id, now=t0 + timedelta(seconds=61))  # settle is 60s
    nightly = backups()["nightly.dump"]
    assert (nightly["state"], nightly["format"], nightly["size"]) == ("completed", "pg_custom",
                                                                      custom_dump.stat().st_size)
    assert nightly["completed_at"] is not None and nightly["watch_id"] == files_api.backups_id

    data = custom_dump.read_bytes()
    (files_api.backups / "broken.dump").write_bytes(data[: len(data) // 2])
    t1 = t0 + timedelta(minutes=5)
    run_scan(files_api.rt, files_api.backups_id, now=t1)
    run_scan(files_api.rt, files_api.backups_id, now=t1 + timedelta(seconds=61))
    broken = backups()["broken.dump"]
    assert (broken["state"], broken["format"]) == ("corrupt", "pg_custom") and broken["detail"]
    assert list(backups(state="corrupt")) == ["broken.dump"]
    assert list(backups(state="completed")) == ["nightly.dump"]
    assert set(backups(watch_id=files_api.backups_id)) == {"nightly.dump", "broken.dump"}
    assert backups(watch_id=files_api.etc_id) == {}

    events = files_api.client.get("/api/v1/events", query_string={"type": "backup.corrupt"},
                                  headers={"X-API-Key": files_api.key}).json["items"]
    assert [(e["severity"], Path(e["payload"]["path"]).name) for e in events] == [("critical", "broken.dump")]


@pytest.mark.parametrize("path", ["watches", "watches/{etc_id}", "changes", "backups"])
def test_every_files_endpoint_needs_a_key(files_api, path):
    path = path.format(etc_id=files_api.etc_id)
    assert files_api.client.get(f"/api/v1/files/{path}").status_code == 401
    assert files_api.client.get(f"/api/v1/files/{path}", headers={"X-API-Key": "dbmon_not-a-key"}).status_code == 401
    assert files_api.client.get(f"/api/v1/files/{path}", headers={"X-API-Key": files_api.key}).status_code == 200
