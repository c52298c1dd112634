"""What every channel driver shares: the error type that tells the outbox whether to
retry, and HTTP status classification."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

import requests

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


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> str:
    """POST and classify the outcome: 2xx ok; 408, 429, 5xx and network errors retry; other 4xx are permanent."""
    try:
        response = requests.post(url, data=body, headers={"User-Agent": USER_AGENT, **headers}, timeout=timeout)
    except requests.Timeout:
        raise DeliveryError(f"timed out after {timeout:g}s") from None
    except requests.ConnectionError as exc:
        raise DeliveryError(f"connection failed: {exc.__class__.__name__}") from None
    if 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    detail = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise DeliveryError(detail, retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    raise DeliveryError(detail, permanent=True)
