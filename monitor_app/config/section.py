"""What every config section is built from: one strict base model and one way to name a field.

Each concern's section (`containers`, `schema`, `alerting`, ...) and the assets and watch
entries subclass `ConfigSection`, so an unknown key is an error everywhere, and every
validation error reads as the path the user wrote: `alerting.rules[2].for: ...`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigSection(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def field_path(loc: tuple, prefix: str = "") -> str:
    """`rules[2].for` from pydantic's `("rules", 2, "for")`; validator frames are not fields."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith("function-"):
            path += f".{part}" if path else str(part)
    return path or "(file)"


def validation_errors(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, message) pairs for `ConfigError`, without pydantic's "Value error, " noise."""
    return [(field_path(err["loc"], prefix), err["msg"].removeprefix("Value error, ")) for err in exc.errors()]
