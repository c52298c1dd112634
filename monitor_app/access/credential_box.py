"""Encryption of stored database credentials.

Passwords live only in `Asset.secret`, Fernet-encrypted with a key derived from the
settings' secret key (see `secret_keys`); the API never selects that column.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.errors import DbmonError
from monitor_app.access.secret_keys import CREDENTIALS, KeyRing, derive, legacy_credentials_key


class CredentialBox:
    def __init__(self, keys: KeyRing | str):
        ring = KeyRing.of(keys)
        self._current = Fernet(base64.urlsafe_b64encode(derive(ring.current, CREDENTIALS)))
        openers = [self._current]
        openers += [Fernet(base64.urlsafe_b64encode(derive(k, CREDENTIALS))) for k in ring.previous]
        openers += [Fernet(legacy_credentials_key(k)) for k in ring.all]
        # MultiFernet encrypts with the first key and tries each in turn to decrypt.
        self._fernet = MultiFernet(openers)

    def seal(self, secret: dict) -> bytes:
        return self._fernet.encrypt(json.dumps(secret, sort_keys=True).encode())

    def open(self, token: bytes | None) -> dict:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise DbmonError("stored credential cannot be decrypted: was DBMON_SECRET_KEY changed "
                             "without listing the old key in DBMON_SECRET_KEY_PREVIOUS?", permanent=True) from None

    def is_current(self, token: bytes) -> bool:
        try:
            self._current.decrypt(token)
            return True
        except InvalidToken:
            return False

    def reseal(self, token: bytes) -> bytes:
        """The same secret sealed with the current key (InvalidToken when no key opens it)."""
        return self._fernet.rotate(token)


@dataclass
class ResealResult:
    resealed: int
    already_current: int
    unreadable: list[str]

    def as_dict(self) -> dict:
        return {"resealed": self.resealed, "already_current": self.already_current, "unreadable": self.unreadable}


def reseal_all(session: Session, box: CredentialBox) -> ResealResult:
    """Re-encrypt every stored credential that the current key did not make, so the previous
    keys can be dropped; a credential no key opens is reported by asset name and left alone."""
    from monitor_app.store.models import Asset

    result = ResealResult(0, 0, [])
    for asset in session.scalars(select(Asset).where(Asset.secret.is_not(None)).order_by(Asset.id)):
        secret = asset.secret
        if secret is None:  # excluded by the query; narrows the type
            continue
        if box.is_current(secret):
            result.already_current += 1
            continue
        try:
            asset.secret = box.reseal(secret)
        except InvalidToken:
            result.unreadable.append(asset.name)
            continue
        result.resealed += 1
    return result
