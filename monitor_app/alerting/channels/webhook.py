"""Generic webhook: Alertmanager's webhook JSON (version 4) plus a `dbmon` block, signed
with HMAC-SHA256 over `<timestamp>.<body>` so receivers can check origin and freshness."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from monitor_app.alerting.channels.base import post_json
from monitor_app.alerting.config import WebhookChannel
from monitor_app.alerting.templates import TemplateRenderer

SIGNATURE_HEADER = "X-Dbmon-Signature"
TIMESTAMP_HEADER = "X-Dbmon-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookDriver:
    def __init__(self, name: str, spec: WebhookChannel):
        self.name, self.spec = name, spec

    def render(self, renderer: TemplateRenderer, context: dict) -> bytes:
        payload = renderer.render_json("webhook/payload.json.j2", {**context, "receiver": self.name})
        return json.dumps(payload, separators=(",", ":")).encode()

    def send(self, renderer: TemplateRenderer, context: dict) -> str:
        body = self.render(renderer, context)
        headers = {"Content-Type": "application/json", "Idempotency-Key": context["idempotency_key"],
                   **self.spec.headers}
        if self.spec.secret:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.spec.secret, timestamp, body)
        return post_json(self.spec.url, body, headers, self.spec.timeout,
                         allow_private=self.spec.allow_private_targets)
