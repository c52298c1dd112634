"""Behind a reverse proxy: trust its X-Forwarded-* headers, and only as many hops as configured.

With the setting at 0 the headers are ignored, because anyone can send them; trusting them
without a proxy would let a client write any address into the audit log."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_forwarded_headers(app: Flask, trusted_proxies: int) -> None:
    if trusted_proxies > 0:
        n = trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
