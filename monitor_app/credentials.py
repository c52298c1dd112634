"""Encryption of stored database credentials.

Passwords live only in `Asset.secret`, Fernet-encrypted with a key derived from
the settings' secret key; the API never selects that column.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from monitor_app.errors import DbmonError


class CredentialBox:
    def __init__(self, secret_key: str):
        digest = hashlib.sha256(("dbmon-credentials:" + secret_key).encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: dict) -> bytes:
        return self._fernet.encrypt(json.dumps(secret, sort_keys=True).encode())

    def open(self, token: bytes | None) -> dict:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise DbmonError("stored credential cannot be decrypted: was DBMON_SECRET_KEY changed?",
                             permanent=True) from None
