"""Apprise URLs for every service without a dedicated channel (PagerDuty, Teams,
Telegram, ...). Optional: installed with the `alerts` extra.

Apprise makes its own HTTP requests, so the channel's egress rules are applied around it:
every service is told not to follow redirects, and its host is checked against private
addresses before sending (at send time, not at connect time as for webhooks)."""

from __future__ import annotations

from monitor_app.alerting.channels import egress
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
        if not hasattr(apprise.AppriseAsset(), "http_redirects"):
            raise DeliveryError(f"apprise {apprise.__version__} cannot be told not to follow redirects; "
                                "upgrade it", permanent=True)
        title, body = self.render(renderer, context)
        notifier = apprise.Apprise(asset=apprise.AppriseAsset(http_redirects=False))
        for url in self.spec.urls:
            if not notifier.add(url):
                raise DeliveryError(f"apprise cannot use URL scheme of {url.split(':', 1)[0]!r}", permanent=True)
        for service in notifier:
            service.redirects = False  # also over a `redirect=yes` in the URL
            host = getattr(service, "host", None)
            if host and not self.spec.allow_private_targets:
                try:
                    egress.public_addresses(host, getattr(service, "port", None) or 443)
                except egress.PrivateTargetRefused as exc:
                    raise DeliveryError(exc.message, permanent=True) from None
                except OSError:
                    pass  # unresolvable: apprise reports the failed send itself
        if not notifier.notify(title=title, body=body):
            raise DeliveryError("apprise reported a failed notification")
        return f"sent to {len(self.spec.urls)} apprise target(s)"
