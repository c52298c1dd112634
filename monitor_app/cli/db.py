from __future__ import annotations

import click

from monitor_app.config.settings import get_settings
from monitor_app.store.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """dbmon's own store."""


@db.command("upgrade")
@click.option("--sync-config", is_flag=True, hidden=True, help="then queue a config sync (what `dbmon up` does at start)")
def db_upgrade(sync_config: bool) -> None:
    """Apply migrations up to the newest revision."""
    url = get_settings().resolved_database_url
    upgrade(url)
    click.echo(f"store at revision {current_revision(url)}")
    if sync_config:
        from monitor_app.platform.runtime import Runtime

        Runtime(get_settings()).dispatch("assets.sync_config", {}, requested_by="startup")


@db.command("current")
def db_current() -> None:
    """Show the applied and the newest revision."""
    url = get_settings().resolved_database_url
    click.echo(f"current: {current_revision(url)}  head: {head_revision(url)}")
