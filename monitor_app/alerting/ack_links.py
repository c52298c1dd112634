"""Signed acknowledge links carried in notifications: whoever holds the link may
acknowledge that one incident until it expires; nothing else is granted."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from monitor_app.errors import DbmonError

SALT = "dbmon.alerting.ack"
ACK_PATH = "/api/v1/alerts/ack/"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, incident_id: int) -> str:
    return _serializer(secret_key).dumps({"incident": incident_id})


def ack_url(public_url: str, secret_key: str, incident_id: int) -> str:
    return public_url.rstrip("/") + ACK_PATH + make_token(secret_key, incident_id)


def verify(secret_key: str, token: str, max_age: float) -> int:
    """The incident id the token was made for; DbmonError (permanent) when invalid or expired."""
    try:
        data = _serializer(secret_key).loads(token, max_age=int(max_age))
    except SignatureExpired:
        raise DbmonError("acknowledge link has expired", permanent=True, field="token") from None
    except BadSignature:
        raise DbmonError("acknowledge link is not valid", permanent=True, field="token") from None
    if not isinstance(data, dict) or not isinstance(data.get("incident"), int):
        raise DbmonError("acknowledge link is not valid", permanent=True, field="token")
    return data["incident"]
