"""The database an asset names and its login, as metrics polls and posture checks look it up."""

from __future__ import annotations

import pytest

from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets.login_target import login_target
from monitor_app.errors import NotFound
from monitor_app.store.models import Asset

BOX = CredentialBox("login-target-key")
DB = {"host": "db.internal", "port": 5432, "database": "orders", "user": "monitor"}


def add(store, name: str, *, engine: str = "postgresql", connection: dict | None = None,
        status: str | None = None, password: str | None = None) -> int:
    with store.session() as s:
        asset = Asset(kind="database", engine=engine, name=name, source="config", external_id=name,
                      connection=DB if connection is None else connection, status=status,
                      secret=BOX.seal({"password": password}) if password else None)
        s.add(asset)
        s.flush()
        return asset.id


def test_it_copies_name_connection_and_password_for_use_after_the_session(store):
    asset_id = add(store, "orders", password="s3cret")
    with store.session() as s:
        target = login_target(s, asset_id, BOX)
    target.connection["database"] = "changed"  # a copy: the stored asset is untouched
    assert (target.name, target.password) == ("orders", "s3cret")
    with store.session() as s:
        assert s.get(Asset, asset_id).connection["database"] == "orders"


@pytest.mark.parametrize("kind", ["missing", "gone", "mysql", "no database yet"])
def test_it_refuses_what_has_no_postgresql_database_to_log_into(store, kind):
    asset_id = {"missing": lambda: 10_000,
                "gone": lambda: add(store, "old", status="gone"),
                "mysql": lambda: add(store, "shop", engine="mysql"),
                "no database yet": lambda: add(store, "container", connection={"host": "172.17.0.2", "port": 5432}),
                }[kind]()
    with store.session() as s, pytest.raises(NotFound, match="is not a postgresql asset to log into"):
        login_target(s, asset_id, BOX)
