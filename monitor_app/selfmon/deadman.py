"""The dead-man's switch: an HTTP ping to an outside service while dbmon finds itself healthy.

dbmon cannot page about its own death. An outside service (healthchecks.io, a push monitor)
expects a ping every interval and pages when they stop: because dbmon died, because beat or the
workers that run the self-check died, or because the self-check found something broken and held
the ping back. Several workers may run the self-check; a conditional UPDATE in the store lets
one ping per interval (state.claim).

The URL usually carries a token (in its path or query), so it is never logged, stored or shown:
only its host is. The ping follows no redirect, has a short timeout, and refuses private
addresses unless allowed, checked on the address the connection uses (the webhooks' egress).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from urllib.parse import urlsplit

import requests

from monitor_app.alerting.channels import egress
from monitor_app.alerting.channels.base import status_text
from monitor_app.config.settings import Settings
from monitor_app.selfmon import state
from monitor_app.store.base import Store, iso

log = logging.getLogger("dbmon.selfmon.deadman")

STATE = "deadman"
USER_AGENT = "dbmon-deadman/1"


def target_host(url: str) -> str:
    """What may be shown of the URL: its host (and a port that is not the scheme's default)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    host = parts.hostname or "(no host)"
    return f"{host}:{port}" if port else host


def ping(url: str, *, method: str = "GET", timeout: float = 5.0, allow_private: bool = False,
         body: dict | None = None) -> tuple[bool, str]:
    """(ok, outcome in words). The outcome names a status or an error class, never the URL: a
    requests exception's text repeats the URL, token included."""
    data = json.dumps(body or {}).encode() if method == "POST" else None
    headers = {"User-Agent": USER_AGENT, **({"Content-Type": "application/json"} if data is not None else {})}
    try:
        with egress.session(allow_private) as http:
            response = http.request(method, url, data=data, headers=headers, timeout=timeout,
                                    allow_redirects=False, stream=True)
            response.close()
    except egress.PrivateTargetRefused:
        return False, (f"refused: {target_host(url)} resolves to a private or local address "
                       "(DBMON_DEADMAN_ALLOW_PRIVATE=true allows it)")
    except requests.Timeout:
        return False, f"timed out after {timeout:g}s"
    except requests.ConnectionError as exc:
        return False, f"connection failed: {type(exc).__name__}"
    except requests.RequestException as exc:
        return False, f"request failed: {type(exc).__name__}"
    code = response.status_code
    if 200 <= code < 300:
        return True, status_text(code)
    if 300 <= code < 400:
        return False, f"{status_text(code)}: redirect not followed"
    return False, status_text(code)


def maybe_ping(store: Store, settings: Settings, healthy: bool, now: datetime, problems: list[str]) -> dict:
    """Ping when healthy and nobody pinged within the interval. A failed ping is not retried
    before the next interval: the outside service's grace time covers one miss."""
    url = settings.deadman_url
    if not url:
        return {"configured": False}
    if not healthy:
        log.info("dead-man ping held back: %s", "; ".join(problems[:3]))
        return {"configured": True, "sent": False, "reason": "unhealthy"}
    # A little slack: a check that runs a moment early must not skip a whole check interval.
    every = settings.deadman_interval - min(1.0, settings.deadman_interval * 0.05)
    if not state.claim(store, STATE, now, every):
        return {"configured": True, "sent": False, "reason": "pinged within the interval"}
    ok, outcome = ping(url, method=settings.deadman_method, timeout=settings.deadman_timeout,
                       allow_private=settings.deadman_allow_private,
                       body={"status": "ok", "at": iso(now), "source": "dbmon"})
    state.remember(store, STATE, now, {"ok": ok, "result": outcome})
    (log.info if ok else log.warning)("dead-man ping to %s: %s", target_host(url), outcome)
    return {"configured": True, "sent": True, "ok": ok, "result": outcome}
