"""`dbmon posture`: the security posture findings open now."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from monitor_app.posture.views import FINDING_SEVERITIES, finding_dict


@click.group()
def posture() -> None:
    """Security posture of monitored PostgreSQL servers."""


@posture.command("findings")
@click.option("--asset", "asset_name", default=None, help="only this asset (by name)")
@click.option("--severity", type=click.Choice(FINDING_SEVERITIES), default=None)
@click.option("--json", "as_json", is_flag=True, help="print a JSON array instead of a table")
def findings(asset_name: str | None, severity: str | None, as_json: bool) -> None:
    """List open findings, critical first. Exit 1 when a critical finding is open."""
    from monitor_app.errors import NotFound
    from monitor_app.platform.runtime import Runtime
    from monitor_app.store.models import Asset, PostureFinding

    rt = Runtime()
    with rt.store.session() as s:
        query = select(PostureFinding, Asset.name).join(Asset, Asset.id == PostureFinding.asset_id)
        if asset_name:
            if s.scalar(select(Asset.id).where(Asset.name == asset_name)) is None:
                raise NotFound(f"no asset named {asset_name!r}")
            query = query.where(Asset.name == asset_name)
        if severity:
            query = query.where(PostureFinding.severity == severity)
        rows = [{**finding_dict(f), "asset": name} for f, name in s.execute(query)]
    rows.sort(key=lambda r: (r["severity"] != "critical", r["asset"], r["id"]))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no open findings")
    for r in rows if not as_json else ():
        click.echo(f"{r['severity']:<9} {r['asset']:<20} {r['id']:<28} {r['title']}")
    if any(r["severity"] == "critical" for r in rows):
        raise SystemExit(1)
