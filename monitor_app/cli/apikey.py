from __future__ import annotations

import click
from sqlalchemy import select

from monitor_app.access import audit
from monitor_app.access.api_keys import create_key, revoke
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models import ApiKey
from monitor_app.store.models.core import ROLES


@click.group()
def apikey() -> None:
    """API keys."""


@apikey.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default="cli", show_default=True)
def apikey_create(role: str, name: str) -> None:
    """Create a key and print it once; only its hash is stored."""
    rt = Runtime()
    with audit.recorded(rt.store, actor=audit.cli_actor(), action="apikey.create", target=name,
                        detail={"role": role}) as entry:
        with rt.store.session() as s:
            row, plain = create_key(s, name=name, role=role)
            s.flush()
            entry.detail["id"] = row.id
    click.echo(plain)


@apikey.command("list")
def apikey_list() -> None:
    rt = Runtime()
    with rt.store.session() as s:
        for k in s.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = "revoked" if k.revoked_at else "active"
            click.echo(f"{k.id}\t{k.name}\t{k.role}\t{k.prefix}…\t{state}")


@apikey.command("revoke")
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int) -> None:
    rt = Runtime()
    with audit.recorded(rt.store, actor=audit.cli_actor(), action="apikey.revoke", target=str(key_id)) as entry:
        with rt.store.session() as s:
            done = revoke(s, key_id)
        entry.outcome = "ok" if done else "invalid"
    if not done:
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked {key_id}")
