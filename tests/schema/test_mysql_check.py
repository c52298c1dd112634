"""Scheduled schema checks of a MariaDB asset: the pre-check stops at an unchanged marker (data
writes included), a DDL is stored as a change set with its risk, and a server that refuses is a
failed check, not a crashed task."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from monitor_app.errors import DbmonError
from monitor_app.schema.check import due_assets, run_check
from monitor_app.store.models import Event
from tests.schema.conftest import add_asset, make_runtime
from tests.schema.mysql_scratch import MysqlScratch


@pytest.fixture()
def scratch():
    db = MysqlScratch("dbmon_chk")
    try:
        yield db
    finally:
        with db.admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db.name}`")


def _connection(db: MysqlScratch) -> dict:
    # The shared server speaks no TLS: a development-style asset, as the README shows for trust auth.
    return {"host": "127.0.0.1", "port": 3306, "user": "root", "database": db.name, "sslmode": "disable",
            "insecure": True}


def test_a_ddl_is_found_by_the_scheduled_check_and_a_data_write_is_not(store, tmp_path, scratch):
    scratch.run("CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2))")
    time.sleep(2.1)  # past the two seconds in which the pre-check always snapshots (CREATE_TIME is per second)
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="shop", engine="mariadb", connection=_connection(scratch))
    assert asset_id in due_assets(rt)
    first = run_check(rt, asset_id)
    assert first["changed"] is False and first["version"] == 1
    scratch.run("INSERT INTO orders VALUES (1, 9.99)", "UPDATE orders SET total = 10 WHERE id = 1")
    assert run_check(rt, asset_id)["skipped"] == "pre-check marker unchanged"
    scratch.run("ALTER TABLE orders DROP COLUMN total")  # at once: within the second of nothing
    changed = run_check(rt, asset_id)
    assert changed["changed"] is True
    with store.session() as s:
        event = s.scalars(select(Event).where(Event.type == "schema.changed")).one()
    assert event.asset_id == asset_id and event.payload["max_risk"] == "critical"
    assert any("total" in str(c.get("object", "")) for c in event.payload.get("changes", [])) or "total" in event.summary


def test_a_refused_login_is_a_failed_check(store, tmp_path, scratch):
    rt = make_runtime(store, tmp_path)
    asset_id = add_asset(store, name="shop", engine="mysql",
                         connection={**_connection(scratch), "port": 1})
    with pytest.raises(DbmonError) as exc:
        run_check(rt, asset_id)
    assert "cannot connect" in exc.value.message
