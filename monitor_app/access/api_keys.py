"""API keys with roles. Roles are ordered: each includes the rights of those before it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.errors import DbmonError
from monitor_app.store.base import utcnow
from monitor_app.store.models import ApiKey
from monitor_app.store.models.core import ROLES

KEY_PREFIX = "dbm_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def allows(self, needed: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, name: str, role: str) -> tuple[ApiKey, str]:
    """Returns the row and the plain key, which is shown once and never stored."""
    if role not in ROLES:
        raise DbmonError(f"role must be one of {', '.join(ROLES)}", permanent=True, field="role")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=plain[: len(KEY_PREFIX) + 6], key_hash=_hash(plain), role=role)
    session.add(row)
    session.flush()
    return row, plain


def authenticate(session: Session, plain: str | None) -> Principal | None:
    if not plain:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(plain), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return Principal(name=f"key:{row.name}", role=row.role)


def key_id_of(session: Session, plain: str | None) -> int | None:
    """The id of a live key, which a page session keeps instead of the key itself."""
    if not plain:
        return None
    return session.scalar(select(ApiKey.id).where(ApiKey.key_hash == _hash(plain), ApiKey.revoked_at.is_(None)))


def principal_of(session: Session, key_id: int | None) -> Principal | None:
    """Who a page session acts as, while its key lives: revoking the key ends its sessions."""
    if key_id is None:
        return None
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return None
    return Principal(name=f"key:{row.name}", role=row.role)


def revoke(session: Session, key_id: int) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
