"""The deployment's secret keys and the keys derived from them, one per use.

`DBMON_SECRET_KEY` is never used as a key itself: each use (credentials encryption, link
signing) gets its own key, stretched with scrypt (an operator may choose a short key) and
then split with HKDF by context, so a key leaked from one use says nothing about another.
Keys listed in `DBMON_SECRET_KEY_PREVIOUS` still open and verify what they made, while
everything new is made with the current key: that is how a key is rotated.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

CREDENTIALS = b"dbmon credentials encryption v1"
LINK_SIGNING = b"dbmon link signing v1"

# Fixed, because the key must derive the same everywhere; scrypt's cost is what protects a
# weak key, and ~16 MiB of memory makes guessing expensive on GPUs.
_SCRYPT_SALT = b"dbmon secret key"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@lru_cache(maxsize=32)
def _stretched(secret_key: str) -> bytes:
    return Scrypt(salt=_SCRYPT_SALT, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(secret_key.encode())


def derive(secret_key: str, context: bytes) -> bytes:
    """32 bytes for one use of one secret key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(_stretched(secret_key))


def legacy_credentials_key(secret_key: str) -> bytes:
    """The Fernet key of releases that hashed the secret key once with SHA-256; kept so
    credentials stored by them still open (and `dbmon secrets reseal` can move them on)."""
    return base64.urlsafe_b64encode(hashlib.sha256(("dbmon-credentials:" + secret_key).encode()).digest())


@dataclass(frozen=True)
class KeyRing:
    """The current key, which makes everything new, and the previous ones, which only open."""

    current: str
    previous: tuple[str, ...] = ()

    @classmethod
    def of(cls, keys: "KeyRing | str") -> "KeyRing":
        return keys if isinstance(keys, KeyRing) else cls(keys)

    @classmethod
    def parse(cls, current: str, previous: str | None) -> "KeyRing":
        older = tuple(k.strip() for k in (previous or "").split(",") if k.strip() and k.strip() != current)
        return cls(current, older)

    @property
    def all(self) -> tuple[str, ...]:
        return (self.current, *self.previous)
