"""`dbmon secrets`: finishing a secret key rotation."""

from __future__ import annotations

import sys

import click

from monitor_app.access import audit
from monitor_app.access.credential_box import reseal_all
from monitor_app.platform.runtime import Runtime


@click.group()
def secrets() -> None:
    """Secret key rotation."""


@secrets.command("reseal")
def secrets_reseal() -> None:
    """Re-encrypt stored credentials with the current DBMON_SECRET_KEY.

    Run it after moving the old key to DBMON_SECRET_KEY_PREVIOUS; once it reports nothing
    unreadable, the previous keys can be removed (after the longest ack link lifetime)."""
    rt = Runtime()
    with rt.store.session() as s:
        result = reseal_all(s, rt.credentials)
        audit.record(s, actor="cli", action="secrets.reseal", target="assets",
                     outcome="error" if result.unreadable else "ok", detail=result.as_dict())
    click.echo(f"resealed {result.resealed} credential(s) with the current key; "
               f"{result.already_current} already current")
    if result.unreadable:
        click.echo(f"error: no configured key opens the credentials of: {', '.join(result.unreadable)}", err=True)
        sys.exit(1)
