"""What every channel driver shares: the error type that tells the outbox whether to
retry, and HTTP status classification."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from http import HTTPStatus

import requests

from monitor_app.alerting.channels import egress
from monitor_app.errors import DbmonError

USER_AGENT = "dbmon-alerting/1"


class DeliveryError(DbmonError):
    """A failed send. `permanent` means retrying the same message cannot help."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message, permanent=permanent)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max((parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


def status_text(code: int) -> str:
    """`HTTP 404 Not Found`: the standard phrase, never the peer's own reason text or body, which
    would land in the notification log every viewer can read."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float, *,
              allow_private: bool = False) -> str:
    """POST and classify the outcome: 2xx ok; 408, 429, 5xx and network errors retry; a redirect and
    other 4xx are permanent. Redirects are not followed: a 307 would re-send the signed body and
    headers to wherever it points, a 302 would fetch that URL."""
    try:
        with egress.session(allow_private) as http:
            response = http.post(url, data=body, headers={"User-Agent": USER_AGENT, **headers}, timeout=timeout,
                                 allow_redirects=False, stream=True)
            response.close()
    except egress.PrivateTargetRefused as exc:
        raise DeliveryError(exc.message, permanent=True) from None
    except requests.Timeout:
        raise DeliveryError(f"timed out after {timeout:g}s") from None
    except requests.ConnectionError as exc:
        raise DeliveryError(f"connection failed: {exc.__class__.__name__}") from None
    code = response.status_code
    if 200 <= code < 300:
        return status_text(code)
    if 300 <= code < 400:
        raise DeliveryError(f"{status_text(code)}: redirect not followed", permanent=True)
    if code in (408, 429) or code >= 500:
        raise DeliveryError(status_text(code), retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    raise DeliveryError(status_text(code), permanent=True)
