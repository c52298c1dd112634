"""Where a configured password comes from: inline, an environment variable, or a file.

Config assets and container credential rules both name their password this way; reading it in
one place keeps the errors the same (the field that named the source, never the value).
"""

from __future__ import annotations

import os
from pathlib import Path

from monitor_app.errors import ConfigError


def resolve_password(field: str, *, inline: str | None = None, env: str | None = None,
                     file: Path | None = None, source: str = "config") -> str | None:
    """`field` is the path of the entry (`assets.app`); errors name `field.password_env` or `.password_file`."""
    if inline is not None:
        return inline
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError([(f"{field}.password_env", f"environment variable {env} is not set")], source)
        return value
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError([(f"{field}.password_file", f"cannot read: {exc.strerror}")], source) from None
    return None
