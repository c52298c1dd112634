"""`dbmon health PROCESS`: exit 0 when this machine's (or container's) process is healthy, else 1."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import click

from monitor_app.platform.heartbeat import age_seconds
from monitor_app.config.settings import get_settings


def _api_ok(timeout: float) -> tuple[bool, str]:
    settings = get_settings()
    # A wildcard bind is reached on loopback.
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host  # nosec B104
    url = f"http://{host}:{settings.api_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # nosec B310: a fixed http URL
            return resp.status == 200, f"{url} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def _heartbeat_ok(process: str, max_age: float) -> tuple[bool, str]:
    age = age_seconds(get_settings(), process)
    if age is None:
        return False, f"no {process} heartbeat yet"
    return age <= max_age, f"{process} heartbeat {age:.0f}s old (limit {max_age:.0f}s)"


@click.command()
@click.argument("process", type=click.Choice(["api", "worker", "beat", "watcher"]))
@click.option("--max-age", type=float, default=30.0, show_default=True,
              help="oldest acceptable heartbeat, seconds (worker, beat, watcher)")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="API request timeout, seconds")
def health(process: str, max_age: float, timeout: float) -> None:
    """Check one local process: the API's /healthz, or the heartbeat of a worker, beat or watcher."""
    if process == "api":
        ok, why = _api_ok(timeout)
    else:
        ok, why = _heartbeat_ok(process, max_age)
    click.echo(why)
    sys.exit(0 if ok else 1)
