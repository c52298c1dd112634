"""Config-file diff engine: what changed between two versions of a database config file, and how risky it is.

The engine works in two steps so a baseline can be stored and compared much later: a file is
parsed into a JSON-serialisable, secret-free form (`parse_config_file` / `parse_config_text`),
and two parsed forms are compared (`diff_parsed`). Parsing never trusts its input: sizes are
bounded across includes, bad bytes and bad lines become entries in `errors`, and secrets are
replaced by keyed hashes before anything leaves the parser (see `redaction`). Comparison is by
meaning, not text: comments, spacing, order (except pg_hba's, which decides who gets in) and
equivalent spellings such as `128MB` / `131072kB` are not changes.

Supported kinds: postgresql (postgresql.conf, postgresql.auto.conf), pg_hba, mysql (my.cnf),
redis (redis.conf), pgpass. Each change is a dict with `parameter` (`rule` for pg_hba),
`change` (added | removed | changed | moved), `old`, `new`, `risk` (low | medium | high |
critical), `restart_required` (True | False | None = unknown), `reason`, `file` and `line`.
"""

from __future__ import annotations

import secrets

from .kinds import DIFFERS, KINDS, PARSERS, KindParser, guess_kind
from .model import ParsedBuilder
from .redaction import require_key
from .sources import ConfigSources

__all__ = ["KINDS", "diff_config_files", "diff_parsed", "guess_kind", "parse_config_file", "parse_config_text"]

DEFAULT_MAX_BYTES = 4 << 20


def parse_config_text(text: str, kind: str, *, key: bytes, base_dir: str | None = None,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """Parse config text; includes are followed only when `base_dir` says where the text lives."""
    builder, sources, parser = _start(kind, key, max_bytes)
    sources.parse_top_text(text, base_dir, parser.parse_text)
    parser.finish()
    return builder.result()


def parse_config_file(path: str, kind: str | None = None, *, key: bytes,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """Parse a config file and its includes; raises OSError only when `path` itself cannot be read."""
    resolved = kind or guess_kind(path)
    if resolved is None:
        raise ValueError(f"cannot tell the config kind of {path!r} from its name; pass kind= (one of {KINDS})")
    builder, sources, parser = _start(resolved, key, max_bytes)
    sources.parse_top_file(path, parser.parse_text)
    parser.finish()
    return builder.result()


def diff_parsed(old: dict, new: dict, *, pg_settings: dict[str, dict] | None = None) -> list[dict]:
    """Changes from `old` to `new` (both parsed forms of one kind), sorted by name and change."""
    kind = new.get("kind") if isinstance(new, dict) else None
    if not isinstance(old, dict) or old.get("kind") != kind or kind not in DIFFERS:
        raise ValueError("diff_parsed needs two parsed forms of the same known kind")
    return DIFFERS[kind](old, new, pg_settings)


def diff_config_files(old_path: str, new_path: str, kind: str | None = None, *,
                      pg_settings: dict[str, dict] | None = None) -> list[dict]:
    """Parse two files with a fresh random key and diff them; parse errors are not reported here."""
    resolved = kind or guess_kind(new_path) or guess_kind(old_path)
    if resolved is None:
        raise ValueError(f"cannot tell the config kind of {new_path!r} from its name; pass kind=")
    key = secrets.token_bytes(32)
    old = parse_config_file(old_path, resolved, key=key)
    new = parse_config_file(new_path, resolved, key=key)
    return diff_parsed(old, new, pg_settings=pg_settings)


def _start(kind: str, key: bytes, max_bytes: int) -> tuple[ParsedBuilder, ConfigSources, KindParser]:
    if kind not in PARSERS:
        raise ValueError(f"unknown config kind {kind!r}; expected one of {KINDS}")
    key = require_key(key)
    builder = ParsedBuilder(kind)
    sources = ConfigSources(builder, max_bytes)
    return builder, sources, PARSERS[kind](builder, sources, key)
