from __future__ import annotations

import json
import sys
import time

import click

from monitor_app.access import audit
from monitor_app.platform.runtime import Runtime
from monitor_app.platform.scan_kinds import SCAN_KINDS


@click.command()
@click.argument("kind", type=click.Choice(sorted(SCAN_KINDS)))
@click.option("--asset", "asset_id", type=int, help="target asset id, for kinds that take one")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="seconds to wait for the result")
@click.option("--no-wait", is_flag=True, help="print the scan id and return at once")
def scan(kind: str, asset_id: int | None, timeout: float, no_wait: bool) -> None:
    """Queue a scan now and wait for its result (printed as JSON).

    Exit 0 when it completed, 1 when it failed, 3 when it did not finish in time."""
    spec = SCAN_KINDS[kind]
    if spec.asset == "required" and asset_id is None:
        raise click.BadParameter(f"--asset is required for {kind}", param_hint="--asset")
    if spec.asset == "none" and asset_id is not None:
        raise click.BadParameter(f"{kind} takes no asset", param_hint="--asset")
    rt = Runtime()
    kwargs = {"asset_id": asset_id} if asset_id is not None else {}
    actor = audit.cli_actor()
    with audit.recorded(rt.store, actor=actor, action="scan.request", target=kind, detail=dict(kwargs)) as entry:
        run_id = rt.dispatch(spec.task, kwargs, requested_by=actor, kind=kind)
        entry.detail["scan_id"] = run_id
    if no_wait:
        click.echo(run_id)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = rt.ledger.get(run_id)
        if run.status in ("done", "failed"):
            click.echo(json.dumps({"id": run_id, "status": run.status, "result": run.result, "error": run.error},
                                  indent=2))
            sys.exit(0 if run.status == "done" else 1)
        time.sleep(0.05)
    click.echo(json.dumps({"id": run_id, "status": "timeout"}), err=True)
    sys.exit(3)
