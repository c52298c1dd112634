"""The PostgreSQL database (or PgBouncer admin console) an asset names, with what it takes to log into it.

Metrics polls and posture checks both start from an asset id that came through the broker: the
asset may have gone since, or be a discovered container that has no credentials yet.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy.orm import Session

from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets.config_assets import password_for
from monitor_app.errors import NotFound
from monitor_app.store.models import Asset


class LoginTarget(NamedTuple):
    asset: Asset
    name: str
    connection: dict
    password: str | None


def loginable(engine: str | None, connection: dict | None, engines: tuple[str, ...] = ("postgresql",)) -> bool:
    # A discovered container without credentials has no database to log into yet.
    return engine in engines and bool((connection or {}).get("host") and (connection or {}).get("database"))


def login_target(session: Session, asset_id: int, credentials: CredentialBox,
                 engines: tuple[str, ...] = ("postgresql",)) -> LoginTarget:
    """The asset and copies of its name, connection and password, usable after the session ends."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status == "gone" or not loginable(asset.engine, asset.connection, engines):
        raise NotFound(f"asset {asset_id} does not exist, is gone or is not a {' or '.join(engines)} "
                       "asset to log into")
    return LoginTarget(asset, asset.name, dict(asset.connection), password_for(asset, credentials))
