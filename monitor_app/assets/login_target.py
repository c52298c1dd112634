"""The database (PostgreSQL, PgBouncer's admin console, or a MySQL/MariaDB server) an asset names,
with what it takes to log into it.

Metrics polls and posture checks both start from an asset id that came through the broker: the
asset may have gone since, or be a discovered container that has no credentials yet. A PostgreSQL
login goes to a database, so it needs one; a MySQL or MariaDB login goes to the server as an
account (the database is optional), so it needs the user, which only credentials bring.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy.orm import Session

from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets.mysql_transport import MYSQL_ENGINES
from monitor_app.assets.config_assets import password_for
from monitor_app.errors import NotFound
from monitor_app.store.models import Asset


class LoginTarget(NamedTuple):
    asset: Asset
    name: str
    connection: dict
    password: str | None


def loginable(engine: str | None, connection: dict | None, engines: tuple[str, ...] = ("postgresql",)) -> bool:
    # A discovered container without credentials has no database (or account) to log into yet.
    connection = connection or {}
    needed = "user" if engine in MYSQL_ENGINES else "database"
    return engine in engines and bool(connection.get("host") and connection.get(needed))


def login_target(session: Session, asset_id: int, credentials: CredentialBox,
                 engines: tuple[str, ...] = ("postgresql",)) -> LoginTarget:
    """The asset and copies of its name, connection and password, usable after the session ends."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status == "gone" or not loginable(asset.engine, asset.connection, engines):
        raise NotFound(f"asset {asset_id} does not exist, is gone or is not a {' or '.join(engines)} "
                       "asset to log into")
    return LoginTarget(asset, asset.name, dict(asset.connection), password_for(asset, credentials))
