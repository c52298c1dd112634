"""Slack incoming webhook with Block Kit. The base URL is configurable so a proxy, a
Mattermost/Rocket.Chat compatible endpoint or a test receiver can stand in for Slack."""

from __future__ import annotations

import json

from monitor_app.alerting.channels.base import post_json
from monitor_app.alerting.config import SlackChannel
from monitor_app.alerting.templates import TemplateRenderer


class SlackDriver:
    def __init__(self, name: str, spec: SlackChannel):
        self.name, self.spec = name, spec

    def render(self, renderer: TemplateRenderer, context: dict) -> bytes:
        message = renderer.render_json("slack/message.json.j2", context)
        # Block Kit caps a message at 50 blocks; keep the head and say how many were cut.
        blocks = message.get("blocks") or []
        if len(blocks) > 50:
            cut = len(blocks) - 49
            message["blocks"] = blocks[:49] + [{"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"... and {cut} more blocks not shown"}]}]
        return json.dumps(message, separators=(",", ":")).encode()

    def send(self, renderer: TemplateRenderer, context: dict) -> str:
        body = self.render(renderer, context)
        return post_json(self.spec.url, body, {"Content-Type": "application/json",
                                               "Idempotency-Key": context["idempotency_key"]}, self.spec.timeout,
                         allow_private=self.spec.allow_private_targets)
