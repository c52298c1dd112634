"""Keeping secrets out of everything the config diff engine returns.

A secret is replaced by `<redacted:XXXXXXXX>`, the first 8 hex digits of HMAC-SHA256(key, value).
The key is chosen by the caller (a random one per call for a one-off diff), so the token says
whether a secret changed between two versions without being a usable password hash: the same
secret under the same key stays equal, a changed secret shows as two different tokens, and the
value itself never leaves the parser. Values are hashed as the raw bytes read from disk (the
parsers decode with `surrogateescape`), so two passwords differing only in undecodable bytes
still hash apart.

Besides parameters that are secrets by name, values that embed a secret (a libpq conninfo, a
URL with a password, `PGPASSWORD=...` inside an `archive_command`) keep their visible parts and
have only the password replaced, so a diff still shows that the host or user changed.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# Substrings of a parameter name that make its whole value a secret.
SECRET_NAME_PARTS = ("password", "passwd", "passphrase", "secret")
# Names with those words whose values are policies, not secrets; a risk rule needs to see them
# (`password_encryption = md5` is critical).
NOT_SECRET_NAMES = frozenset({
    "password_encryption", "ssl_passphrase_command_supports_reload", "default_password_lifetime",
    "password_history", "password_reuse_interval", "password_require_current", "disconnect_on_expired_password",
})
NOT_SECRET_PREFIXES = ("validate_password",)

_TOKEN = re.compile(r"<redacted:[0-9a-f]{8}>")
# `name=value` fragments inside free-form values (shell commands, option strings).
_EMBEDDED_ASSIGNMENT = re.compile(
    r"(?P<name>\b[\w.-]*?(?:passw(?:or)?d|passphrase|secret)[\w-]*)(?P<eq>\s*=\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\";&|]+)",
    re.IGNORECASE,
)
# scheme://user:password@host
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s/]*)(?P<tail>@)")
_CONNINFO_URI = re.compile(r"^\s*postgres(?:ql)?://", re.IGNORECASE)
_CONNINFO_PAIR = re.compile(r"\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


def require_key(key: object) -> bytes:
    """The redaction key must be real bytes: an empty key would make tokens guessable."""
    if not isinstance(key, bytes) or not key:
        raise ValueError("key must be non-empty bytes")
    return key


def redact(value: str, key: bytes) -> str:
    raw = value.encode("utf-8", "surrogateescape")
    digest = hmac.new(key, raw, hashlib.sha256).hexdigest()
    return f"<redacted:{digest[:8]}>"


def is_redacted(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None


def is_secret_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    if lowered in NOT_SECRET_NAMES or lowered.startswith(NOT_SECRET_PREFIXES):
        return False
    return any(part in lowered for part in SECRET_NAME_PARTS)


def scrub_embedded(value: str, key: bytes) -> str:
    """Redact password assignments and URL passwords inside a free-form value."""

    def assignment(match: re.Match[str]) -> str:
        quoted = match["value"]
        inner = quoted[1:-1] if quoted[:1] in "'\"" and len(quoted) >= 2 else quoted
        return f"{match['name']}{match['eq']}{redact(inner, key)}"

    def userinfo(match: re.Match[str]) -> str:
        return f"{match['head']}{redact(match['password'], key)}{match['tail']}"

    return _URL_USERINFO.sub(userinfo, _EMBEDDED_ASSIGNMENT.sub(assignment, value))


def redact_conninfo(value: str, key: bytes) -> str:
    """A libpq connection string with only its password replaced.

    The key/value form is rebuilt in a canonical spelling (single spaces, minimal quoting), so
    two strings that libpq reads the same compare equal. A string that does not parse is
    redacted whole: better an opaque token than a leaked password.
    """
    if _CONNINFO_URI.match(value):
        return _redact_conninfo_uri(value, key)
    pairs = _parse_conninfo_pairs(value)
    if pairs is None:
        return redact(value, key)
    rendered = []
    for name, item in pairs:
        shown = redact(item, key) if is_secret_name(name) else _quote_conninfo_value(item)
        rendered.append(f"{name}={shown}")
    return " ".join(rendered)


def _redact_conninfo_uri(value: str, key: bytes) -> str:
    def query_password(match: re.Match[str]) -> str:
        return f"{match['lead']}{redact(match['password'], key)}"

    scrubbed = _URL_USERINFO.sub(lambda m: f"{m['head']}{redact(m['password'], key)}{m['tail']}", value)
    return re.sub(r"(?P<lead>[?&]password=)(?P<password>[^&#\s]*)", query_password, scrubbed, flags=re.I)


def _parse_conninfo_pairs(value: str) -> list[tuple[str, str]] | None:
    # Follows libpq's conninfo_parse: `key = value`, values bare or single-quoted, backslash escapes.
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(value)
    while True:
        while pos < end and value[pos].isspace():
            pos += 1
        if pos >= end:
            return pairs
        match = _CONNINFO_PAIR.match(value, pos)
        if match is None:
            return None
        pos = match.end()
        chars: list[str] = []
        if pos < end and value[pos] == "'":
            pos += 1
            while pos < end and value[pos] != "'":
                if value[pos] == "\\" and pos + 1 < end:
                    pos += 1
                chars.append(value[pos])
                pos += 1
            if pos >= end:
                return None  # unterminated quote
            pos += 1
        else:
            while pos < end and not value[pos].isspace():
                if value[pos] == "\\" and pos + 1 < end:
                    pos += 1
                chars.append(value[pos])
                pos += 1
        pairs.append((match["key"].lower(), "".join(chars)))


def _quote_conninfo_value(value: str) -> str:
    if value and not any(c.isspace() or c in "'\\" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
