"""Jinja2 rendering for channel messages. Built-in templates live in
`templates/alerting/<channel>/`; a file of the same relative path in the configured
`template_dir` replaces the built-in one."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from monitor_app.errors import DbmonError
from monitor_app.platform.package_files import templates_dir

BUILTIN = templates_dir() / "alerting"


def _is_html(name: str | None) -> bool:
    return bool(name) and name.removesuffix(".j2").endswith((".html", ".htm"))


def _slack_escape(value: object) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rfc3339(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return "0001-01-01T00:00:00Z" if value is None else str(value)


class TemplateRenderer:
    def __init__(self, user_dir: Path | None = None):
        loaders = [FileSystemLoader(str(user_dir))] if user_dir else []
        loaders.append(FileSystemLoader(str(BUILTIN)))
        # Sandboxed because user templates are configuration, not code.
        self.env = SandboxedEnvironment(loader=ChoiceLoader(loaders), autoescape=_is_html,
                                        trim_blocks=True, lstrip_blocks=True)
        self.env.filters["slack_escape"] = _slack_escape
        self.env.filters["rfc3339"] = _rfc3339
        self.env.policies["json.dumps_kwargs"] = {"sort_keys": False}

    def render(self, name: str, context: dict) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except TemplateError as exc:
            raise DbmonError(f"template {name}: {exc}", permanent=True, field=name) from None

    def render_json(self, name: str, context: dict) -> dict:
        text = self.render(name, context)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DbmonError(f"template {name} did not produce JSON: {exc}", permanent=True, field=name) from None
