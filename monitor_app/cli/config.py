from __future__ import annotations

from pathlib import Path

import click

from monitor_app.config.declarative import load_config


@click.command("check-config")
@click.argument("path", type=click.Path(path_type=Path), required=False)
def check_config(path: Path | None) -> None:
    """Validate a config file (default: DBMON_CONFIG_FILE). Exit 0 if valid, 2 with each error if not."""
    if path is None:
        from monitor_app.config.settings import get_settings

        path = get_settings().config_file
    config = load_config(path)
    click.echo(f"{path}: valid ({len(config.assets)} assets, {len(config.watch)} watch paths)")
