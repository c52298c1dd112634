"""Assets declared in the config file, kept in step with the store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.config.declarative import DbmonConfig
from monitor_app.access.credential_box import CredentialBox
from monitor_app.errors import ConfigError
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset

CONFIG_SOURCE = "config"


@dataclass
class SyncResult:
    added: list[str]
    updated: list[str]
    removed: list[str]
    errors: list[str]

    def as_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "removed": self.removed, "errors": self.errors}


def sync_config_assets(session: Session, config: DbmonConfig, box: CredentialBox) -> SyncResult:
    """Upsert each declared asset; one whose password cannot be resolved is still registered
    (and reported) so the others are not held back."""
    result = SyncResult([], [], [], [])
    existing = {a.external_id: a for a in session.scalars(select(Asset).where(Asset.source == CONFIG_SOURCE))}
    for decl in config.assets:
        try:
            password = decl.resolve_password()
            secret = box.seal({"password": password}) if password is not None else None
        except ConfigError as exc:
            result.errors.append(str(exc))
            secret = None
        asset = existing.pop(decl.name, None)
        fields = dict(kind="database", engine=decl.engine, name=decl.name, labels=dict(decl.labels),
                      connection=decl.connection())
        if asset is None:
            asset = Asset(source=CONFIG_SOURCE, external_id=decl.name, secret=secret, status="unknown",
                          details={}, **fields)
            session.add(asset)
            session.flush()
            result.added.append(decl.name)
            record_event(session, type="asset.registered", asset_id=asset.id,
                         summary=f"{decl.engine} asset {decl.name} registered from the config file")
            continue
        changed = any(getattr(asset, k) != v for k, v in fields.items()) or asset.secret != secret
        revived = asset.status == "gone"
        if changed or revived:
            for k, v in fields.items():
                setattr(asset, k, v)
            asset.secret = secret
            if revived:
                asset.status, asset.gone_at, asset.status_changed_at = "unknown", None, utcnow()
            result.updated.append(decl.name)
    for name, asset in existing.items():
        if asset.status != "gone":
            asset.status, asset.gone_at, asset.status_changed_at = "gone", utcnow(), utcnow()
            result.removed.append(name)
            record_event(session, type="asset.removed", asset_id=asset.id,
                         summary=f"asset {name} removed from the config file")
    return result


def password_for(asset: Asset, box: CredentialBox) -> str | None:
    return box.open(asset.secret).get("password")
