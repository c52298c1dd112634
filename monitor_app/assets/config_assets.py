"""Assets declared in the config file, kept in step with the store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.access.credential_box import CredentialBox
from monitor_app.assets import lifecycle
from monitor_app.config.declarative import DbmonConfig
from monitor_app.errors import ConfigError
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
        except ConfigError as exc:
            result.errors.append(str(exc))
            password = None
        asset = existing.pop(decl.name, None)
        fields = dict(kind="pooler" if decl.engine == "pgbouncer" else "database", engine=decl.engine, name=decl.name,
                      labels=dict(decl.labels), connection=decl.connection())
        if asset is None:
            secret = box.seal({"password": password}) if password is not None else None
            lifecycle.register(session, Asset(source=CONFIG_SOURCE, external_id=decl.name, secret=secret,
                                              details={}, **fields),
                               f"{decl.engine} asset {decl.name} registered from the config file")
            result.added.append(decl.name)
        elif _update(session, asset, fields, password, box):
            result.updated.append(decl.name)
    for name, asset in existing.items():
        if lifecycle.remove(session, asset, f"asset {name} removed from the config file"):
            result.removed.append(name)
    return result


def _update(session: Session, asset: Asset, fields: dict, password: str | None, box: CredentialBox) -> bool:
    """Take the declaration's fields; a removed asset declared again is revived. True if anything changed."""
    changed = [k for k, v in fields.items() if getattr(asset, k) != v]
    before = {k: getattr(asset, k) for k in changed}
    # A seal differs every time: compare what the stored one opens to, and name the change only.
    if password_for(asset, box) != password:
        changed.append("password")
        asset.secret = box.seal({"password": password}) if password is not None else None
    revived = asset.status == "gone"
    for k, v in fields.items():
        setattr(asset, k, v)
    if revived:
        lifecycle.revive(session, asset, f"asset {asset.name} is declared in the config file again")
    elif changed:
        if "connection" in changed:
            asset.next_check_at = None  # a new address is probed at once, not at the old schedule
        lifecycle.change(session, asset, changed, f"{asset.name} changed in the config file: {', '.join(changed)}",
                         before=before, after={k: fields[k] for k in before})
    return revived or bool(changed)


def password_for(asset: Asset, box: CredentialBox) -> str | None:
    return box.open(asset.secret).get("password")
