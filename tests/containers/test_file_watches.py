"""A database container discovered on the real Docker engine gets its bind-mounted data and config
directories watched, with no watch entry in the config file."""

from __future__ import annotations

import os

import pytest
import yaml
from sqlalchemy import select

from monitor_app.config.settings import load_settings
from monitor_app.containers.discovery import reconcile
from monitor_app.files import watch_sync
from monitor_app.files.scan_run import run_scan
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models import Asset, Event
from monitor_app.store.models.files import FileWatch

pytestmark = pytest.mark.docker


def test_a_discovered_container_s_mounts_are_watched(store, runner, containers_config, tmp_path):
    data, conf = tmp_path / "pgdata", tmp_path / "pgconf"
    data.mkdir()
    conf.mkdir()
    (conf / "postgresql.conf").write_text("max_connections = 100\n")
    os.chmod(data, 0o700)
    runner.run("dbmct/postgres:16", "pgfiles",
               binds={str(data): {"bind": "/var/lib/postgresql/data", "mode": "rw"},
                      str(conf): {"bind": "/etc/postgresql", "mode": "ro"}})
    with store.session() as s:
        reconcile(s, runner.client, containers_config)
        asset_id = s.scalar(select(Asset.id).where(Asset.name == runner.name("pgfiles")))
    (tmp_path / "dbmon.yaml").write_text(yaml.safe_dump({}))
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             config_file=tmp_path / "dbmon.yaml")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    out = watch_sync.sync(rt)
    with store.session() as s:
        watches = {w.path: w for w in s.scalars(select(FileWatch).where(FileWatch.asset_id == asset_id))}
        s.expunge_all()
    assert {p: w.kinds for p, w in watches.items()} == {str(data): ["data"], str(conf): ["config"]}
    assert all(w.source == "docker" for w in watches.values())
    for watch_id in out["baseline"]:
        run_scan(rt, watch_id)
    (conf / "postgresql.conf").write_text("max_connections = 500\n")
    os.chmod(data, 0o755)
    run_scan(rt, watches[str(conf)].id)
    run_scan(rt, watches[str(data)].id)
    with store.session() as s:
        events = {e.type: e for e in s.scalars(select(Event).where(Event.type.like("file.%"), Event.asset_id == asset_id))}
    assert events["file.config_changed"].payload["diff"][0]["new"] == "500"
    assert events["file.permissions_changed"].severity == "critical"
