"""Apprise URLs for every service without a dedicated channel (PagerDuty, Teams,
Telegram, ...). Optional: installed with the `alerts` extra."""

from __future__ import annotations

from monitor_app.alerting.channels.base import DeliveryError
from monitor_app.alerting.config import AppriseChannel
from monitor_app.alerting.templates import TemplateRenderer


class AppriseDriver:
    def __init__(self, name: str, spec: AppriseChannel):
        self.name, self.spec = name, spec

    def render(self, renderer: TemplateRenderer, context: dict) -> tuple[str, str]:
        return (renderer.render("apprise/title.txt.j2", context).strip(),
                renderer.render("apprise/body.txt.j2", context))

    def send(self, renderer: TemplateRenderer, context: dict) -> str:
        try:
            import apprise
        except ImportError:
            raise DeliveryError("apprise is not installed (pip install 'dbmon[alerts]')", permanent=True) from None
        title, body = self.render(renderer, context)
        notifier = apprise.Apprise()
        for url in self.spec.urls:
            if not notifier.add(url):
                raise DeliveryError(f"apprise cannot use URL scheme of {url.split(':', 1)[0]!r}", permanent=True)
        if not notifier.notify(title=title, body=body):
            raise DeliveryError("apprise reported a failed notification")
        return f"sent to {len(self.spec.urls)} apprise target(s)"
