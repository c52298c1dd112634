"""Signed acknowledge links carried in notifications: whoever holds the link may
acknowledge that one incident until it expires; nothing else is granted."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from monitor_app.errors import DbmonError
from monitor_app.access.secret_keys import LINK_SIGNING, KeyRing, derive

SALT = "dbmon.alerting.ack"
ACK_PATH = "/api/v1/alerts/ack/"


def _serializer(keys: KeyRing | str) -> URLSafeTimedSerializer:
    ring = KeyRing.of(keys)
    # itsdangerous signs with the last key and verifies with any. The raw keys come first so
    # links sent before keys were derived per use still work until they expire.
    verifying = [k.encode() for k in reversed(ring.all)] + [derive(k, LINK_SIGNING) for k in reversed(ring.previous)]
    return URLSafeTimedSerializer(verifying + [derive(ring.current, LINK_SIGNING)], salt=SALT)


def make_token(keys: KeyRing | str, incident_id: int) -> str:
    return _serializer(keys).dumps({"incident": incident_id})


def ack_url(public_url: str, keys: KeyRing | str, incident_id: int) -> str:
    """The link keeps the public URL's scheme, host and path prefix as configured: behind a
    TLS-terminating proxy the public URL is https even though dbmon itself may serve http."""
    return public_url.rstrip("/") + ACK_PATH + make_token(keys, incident_id)


def verify(keys: KeyRing | str, token: str, max_age: float) -> int:
    """The incident id the token was made for; DbmonError (permanent) when invalid or expired."""
    try:
        data = _serializer(keys).loads(token, max_age=int(max_age))
    except SignatureExpired:
        raise DbmonError("acknowledge link has expired", permanent=True, field="token") from None
    except BadSignature:
        raise DbmonError("acknowledge link is not valid", permanent=True, field="token") from None
    if not isinstance(data, dict) or not isinstance(data.get("incident"), int):
        raise DbmonError("acknowledge link is not valid", permanent=True, field="token")
    return data["incident"]
