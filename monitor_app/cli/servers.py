"""`dbmon servers`: each monitored database server's connection budget and what dbmon holds there."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print a JSON array instead of a table")
def servers(as_json: bool) -> None:
    """Connections held by dbmon per server, against its budget."""
    from monitor_app.assets.server_usage import server_usage
    from monitor_app.platform.runtime import Runtime

    rt = Runtime()
    rows = server_usage(rt.store, rt.connection_budget)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no monitored database servers")
    for r in rows:
        limits = f"max_connections {r['max_connections']}" if r["max_connections"] is not None else "limits not read yet"
        backoff = f", backing off until {r['backoff_until']}" if r["backoff_until"] else ""
        own = " (config file)" if r["budget_from"] == "config" else ""
        click.echo(f"{r['server']:<32} {r['held']}/{r['budget']}{own} held  {r['databases']} databases  {limits}{backoff}")
