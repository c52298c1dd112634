"""Channel family: one module per kind, looked up by the config's `type`."""

from __future__ import annotations

import importlib

DRIVERS = {
    "webhook": "monitor_app.alerting.channels.webhook:WebhookDriver",
    "slack": "monitor_app.alerting.channels.slack:SlackDriver",
    "email": "monitor_app.alerting.channels.email:EmailDriver",
    "apprise": "monitor_app.alerting.channels.apprise_channel:AppriseDriver",
}


def driver_for(name: str, spec):
    module, _, cls = DRIVERS[spec.type].partition(":")
    return getattr(importlib.import_module(module), cls)(name, spec)
