"""Email over SMTP with STARTTLS (or implicit TLS), multipart text + HTML.

The Message-ID derives from the idempotency key, so a re-send after a worker crash
carries the same id and mail systems can drop the duplicate."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from monitor_app.alerting.channels.base import DeliveryError
from monitor_app.alerting.config import EmailChannel
from monitor_app.alerting.templates import TemplateRenderer


class EmailDriver:
    def __init__(self, name: str, spec: EmailChannel):
        self.name, self.spec = name, spec

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.spec.ca_file)
        if not self.spec.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def render(self, renderer: TemplateRenderer, context: dict) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = " ".join(renderer.render("email/subject.txt.j2", context).split())[:250]
        msg["From"] = self.spec.sender
        msg["To"] = ", ".join(self.spec.to)
        msg["Date"] = formatdate(localtime=False)
        digest = hashlib.sha256(context["idempotency_key"].encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<{digest}@dbmon.alerting>"
        msg["X-Dbmon-Idempotency-Key"] = context["idempotency_key"]
        msg.set_content(renderer.render("email/body.txt.j2", context))
        msg.add_alternative(renderer.render("email/body.html.j2", context), subtype="html")
        return msg

    def send(self, renderer: TemplateRenderer, context: dict) -> str:
        msg = self.render(renderer, context)
        spec = self.spec
        try:
            if spec.ssl:
                client = smtplib.SMTP_SSL(spec.host, spec.port, timeout=spec.timeout, context=self._tls())
            else:
                client = smtplib.SMTP(spec.host, spec.port, timeout=spec.timeout)
            with client:
                client.ehlo()
                if not spec.ssl and spec.starttls:
                    if client.has_extn("starttls"):
                        client.starttls(context=self._tls())
                        client.ehlo()
                    elif spec.require_tls:
                        raise DeliveryError(f"{spec.host}:{spec.port} does not offer STARTTLS", permanent=True)
                if spec.username:
                    client.login(spec.username, spec.password or "")
                refused = client.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP authentication failed: {exc.smtp_code}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"all recipients refused: {sorted(exc.recipients)}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            # 5xx is the server's final word; 4xx (greylisting, full queue) may pass later.
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from None
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"SMTP to {spec.host}:{spec.port} failed: {exc}") from None
        detail = f"accepted for {len(spec.to) - len(refused)} of {len(spec.to)} recipients"
        return detail
