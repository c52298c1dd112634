"""The `dbmon` command. Subcommands are imported only when used, so `dbmon --help` is instant
and a command never pays for another's imports."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from monitor_app.errors import ConfigError, DbmonError

COMMANDS: dict[str, str] = {
    "up": "monitor_app.cli.processes:up",
    "worker": "monitor_app.cli.processes:worker",
    "beat": "monitor_app.cli.processes:beat",
    "watcher": "monitor_app.cli.processes:watcher",
    "api": "monitor_app.cli.processes:api",
    "flower": "monitor_app.cli.processes:flower",
    "db": "monitor_app.cli.db:db",
    "check-config": "monitor_app.cli.config:check_config",
    "apikey": "monitor_app.cli.apikey:apikey",
    "scan": "monitor_app.cli.scan:scan",
    "containers": "monitor_app.cli.containers:containers",
    "discover": "monitor_app.cli.containers:discover",
    "schema": "monitor_app.cli.schema:schema",
    "alerts": "monitor_app.cli.alerts:alerts",
    "posture": "monitor_app.cli.posture:posture",
    "secrets": "monitor_app.cli.secrets:secrets",
    "health": "monitor_app.cli.health:health",
    "servers": "monitor_app.cli.servers:servers",
    "metrics": "monitor_app.cli.metrics:metrics",
    "files": "monitor_app.cli.files:files",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        path = COMMANDS.get(name)
        if path is None:
            return None
        module, _, attr = path.partition(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        # The one place a CLI failure becomes a message and an exit status, never a traceback.
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: {exc.source}:", err=True)
            for path, msg in exc.errors:
                click.echo(f"  {path}: {msg}", err=True)
            sys.exit(2)
        except DbmonError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2 if exc.permanent else 1)


@click.group(cls=LazyGroup)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default from DBMON_LOG_LEVEL)")
def cli(log_level: str | None) -> None:
    """dbmon: continuous monitoring of database infrastructure."""
    from monitor_app.config.settings import get_settings

    level = log_level or get_settings().log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    cli()
