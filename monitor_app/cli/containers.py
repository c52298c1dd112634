"""`dbmon containers`: database containers on the Docker engine (`dbmon discover` is short for
`dbmon containers discover`)."""

from __future__ import annotations

import json

import click

from monitor_app.access import audit
from monitor_app.containers import inventory
from monitor_app.containers.identify import identify
from monitor_app.containers.asset_upsert import endpoints
from monitor_app.errors import DbmonError, ProbeError


def _rows(records) -> list[dict]:
    rows = []
    for rec in records:
        ident = identify(rec)
        if not ident.is_database:
            continue
        rows.append({
            "container_id": rec.id, "name": rec.name, "image": rec.image, "engine": ident.engine,
            "kind": ident.kind, "ports": sorted(rec.all_ports), "endpoints": endpoints(rec, ident.engine),
            "status": rec.status, "health": rec.health, "restart_count": rec.restart_count,
            "confidence": ident.confidence, "reasons": ident.reasons,
        })
    return sorted(rows, key=lambda r: r["name"])


@click.group()
def containers() -> None:
    """Database containers found on the Docker engine."""


@containers.command("discover")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array instead of a table")
@click.option("--no-store", is_flag=True, help="only look; do not register assets in the store")
@click.option("--docker-url", default=None, help="engine address (default: config, DOCKER_HOST, local socket)")
def discover(as_json: bool, no_store: bool, docker_url: str | None) -> None:
    """Reconcile once with the Docker engine and list the database containers found.

    Containers that are not databases (applications, admin tools, exporters) are not listed."""
    from monitor_app.platform.runtime import Runtime

    rt = None if no_store else Runtime()
    config = rt.config.containers if rt else None
    client = inventory.connect(docker_url or (config.docker_url if config else None))  # ProbeError -> exit 1
    try:
        try:
            records = inventory.list_all(client)
        except Exception as exc:  # noqa: BLE001 - docker raises several unrelated types for "engine away"
            raise ProbeError(f"docker engine unreachable: {exc}") from None
        if rt is not None:
            from monitor_app.containers.discovery import reconcile

            from sqlalchemy.exc import OperationalError, ProgrammingError

            try:
                with audit.recorded(rt.store, actor=audit.cli_actor(), action="discovery.run",
                                    target="docker") as entry:
                    with rt.store.session() as s:
                        out = reconcile(s, client, rt.config.containers, rt.credentials, records=records)
                    entry.detail.update({k: len(v) if isinstance(v, list) else v for k, v in out.as_dict().items()})
                assets = _asset_ids(rt)
            except (OperationalError, ProgrammingError) as exc:
                raise DbmonError(f"cannot write to the store ({type(exc.orig).__name__}); "
                                 "run `dbmon db upgrade`, or use --no-store", permanent=True) from None
        else:
            out, assets = None, {}
    finally:
        client.close()
    rows = _rows(records)
    for row in rows:
        row["asset_id"] = assets.get(row["name"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no database containers found")
    else:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            ep = r["endpoints"][0] if r["endpoints"] else None
            where = f"{ep['host']}:{ep['port']}" if ep else "(no reachable endpoint)"
            click.echo(f"{r['name']:<{width}}  {r['engine']:<13} {r['status']:<10} {where:<22} "
                       f"{r['confidence']:.2f}  {r['image']}")
    if out is not None:
        click.echo(f"{out.seen} containers seen, {out.databases} databases; new: {len(out.created)}, "
                   f"changed: {len(out.changed)}, revived: {len(out.revived)}, gone: {len(out.gone)}", err=True)


def _asset_ids(rt) -> dict[str, int]:
    from sqlalchemy import select

    from monitor_app.containers.asset_upsert import SOURCE
    from monitor_app.store.models import Asset

    with rt.store.session() as s:
        return dict(s.execute(select(Asset.name, Asset.id).where(Asset.source == SOURCE, Asset.status != "gone")).all())
