"""`dbmon schema ...`: snapshots and diffs for people and CI pipelines, event trigger admin.

`diff` exits like diff(1): 0 no differences, 1 differences, 2 trouble.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from monitor_app.errors import DbmonError
from monitor_app.platform.vocabulary import RISKS

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def _fail(exc: DbmonError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(EXIT_TROUBLE)


def _audited(action: str, dsn: str):
    """Trigger changes alter a monitored database: recorded with the OS user, success or not."""
    from monitor_app.access import audit
    from monitor_app.platform.runtime import Runtime

    store = Runtime().store
    audit.check_writable(store)
    return audit.recorded(store, actor=audit.cli_actor(), action=action, target=_where(dsn))


def _where(dsn: str) -> str:
    # Never the DSN itself: it may carry a password.
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import parse_dsn

    try:
        p = parse_dsn(dsn)
    except ProgrammingError:
        return "postgresql:(unparsable dsn)"
    return f"postgresql://{p.get('host', '')}:{p.get('port', 5432)}/{p.get('dbname', '')}"


@click.group("schema")
def schema() -> None:
    """Schema snapshots, diffs and the PostgreSQL event trigger."""


@schema.command("snapshot")
@click.option("--dsn", required=True, help="postgresql://..., mysql://... / mariadb://... or sqlite:///path")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def snapshot_cmd(dsn: str, out: str | None) -> None:
    """Print (or save) a JSON snapshot of a database's schema."""
    from monitor_app.schema.snapshot import take_snapshot
    from monitor_app.schema.snapshot_format import dump

    try:
        doc = dump(take_snapshot(dsn))
    except DbmonError as exc:
        _fail(exc)
    if out:
        try:
            Path(out).write_text(doc + "\n")
        except OSError as exc:
            click.echo(f"error: cannot write {out}: {exc.strerror}", err=True)
            sys.exit(EXIT_TROUBLE)
    else:
        click.echo(doc)


@schema.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--fail-on", type=click.Choice(RISKS),
              help="Exit 1 only if some change is at least this risky (default: any change).")
def diff_cmd(old: str, new: str, fmt: str, fail_on: str | None) -> None:
    """Compare OLD and NEW (snapshot files or DSNs); exit 0 same, 1 different, 2 error."""
    from monitor_app.schema.diff import diff, summary_line
    from monitor_app.schema.risk import RISK_ORDER
    from monitor_app.schema.snapshot import resolve

    try:
        changes = diff(resolve(old), resolve(new))
    except DbmonError as exc:
        _fail(exc)
    if fmt == "json":
        click.echo(json.dumps(changes, indent=2, default=str))
    elif changes:
        for change in changes:
            click.echo(summary_line(change))
    else:
        click.echo("no differences")
    if fail_on:
        changes = [c for c in changes if RISK_ORDER[c["risk"]] >= RISK_ORDER[fail_on]]
    sys.exit(EXIT_DIFFERENT if changes else EXIT_SAME)


@schema.command("install-trigger")
@click.option("--dsn", required=True, help="postgresql://... as a superuser")
def install_trigger_cmd(dsn: str) -> None:
    """Install the event trigger that reports DDL the moment it commits."""
    from monitor_app.schema import event_trigger

    try:
        with _audited("schema.trigger.install", dsn):
            event_trigger.install(dsn)
    except DbmonError as exc:
        _fail(exc)
    click.echo("schema event trigger installed")


@schema.command("uninstall-trigger")
@click.option("--dsn", required=True, help="postgresql://... as a superuser")
def uninstall_trigger_cmd(dsn: str) -> None:
    """Remove the event trigger, its function and the _dbmon schema."""
    from monitor_app.schema import event_trigger

    try:
        with _audited("schema.trigger.uninstall", dsn) as entry:
            present = event_trigger.uninstall(dsn)
            entry.detail["was_installed"] = present
    except DbmonError as exc:
        _fail(exc)
    click.echo("schema event trigger removed" if present else "no schema event trigger was installed")
