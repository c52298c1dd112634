"""The shapes every kind shares: the parsed form being built, and one reported change.

The parsed form is plain JSON (lists, dicts, strings) so it can be stored as a baseline and
diffed later by a process that never saw the file. Errors are bounded in number because a
hostile or binary file can have a million bad lines, and a report of the first hundred says
as much as all of them.
"""

from __future__ import annotations

from typing import Any, Callable

RISKS = ("low", "medium", "high", "critical")
CHANGES = ("removed", "added", "changed", "moved")
MAX_ERRORS = 100
# A "config" with this many bad lines is not one: stop instead of lexing megabytes of junk.
GIVE_UP_AFTER_ERRORS = 1000


class ParsedBuilder:
    """Collects entries, errors and the files read while one config (with its includes) is parsed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.entries: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.files: list[str] = []
        self._suppressed = 0
        self._stopped: dict[str, Any] | None = None

    def error(self, file: str, line: int, message: str) -> None:
        # Messages never quote the offending line: it may hold a password.
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "file": file, "message": message})
        else:
            self._suppressed += 1

    def should_stop(self, file: str, line: int) -> bool:
        """True once too many errors were seen; parsers then leave the rest unread."""
        if len(self.errors) + self._suppressed < GIVE_UP_AFTER_ERRORS:
            return False
        if self._stopped is None:
            self._stopped = {"line": line, "file": file,
                             "message": f"more than {GIVE_UP_AFTER_ERRORS} errors: not a config file? "
                                        "parsing stopped here"}
        return True

    def file_read(self, path: str) -> None:
        if path not in self.files:
            self.files.append(path)

    def result(self) -> dict[str, Any]:
        errors = list(self.errors)
        if self._suppressed:
            last = errors[-1]
            errors.append({"line": last["line"], "file": last["file"],
                           "message": f"{self._suppressed} more errors not listed"})
        if self._stopped is not None:
            errors.append(self._stopped)
        parsed = {"kind": self.kind, "entries": self.entries, "errors": errors, "files": self.files}
        return json_safe(parsed)


def json_safe(value: Any) -> Any:
    """Undecodable bytes were kept as surrogates for hashing; outside the parser they become `\\xNN`
    escapes, which keep two different bad bytes different (U+FFFD would make them equal)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            try:
                return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:  # a surrogate that never was a byte
                return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def make_change(
    name: str,
    change: str,
    old: str | None,
    new: str | None,
    *,
    risk: str,
    reason: str,
    restart_required: bool | None,
    where: dict[str, Any] | None,
    identity: str = "parameter",
) -> dict[str, Any]:
    """One reported change; `where` is the entry (new, else old) that says which file and line."""
    if risk not in RISKS or change not in CHANGES:
        raise ValueError(f"unknown risk {risk!r} or change {change!r}")
    return {
        identity: name,
        "change": change,
        "old": old,
        "new": new,
        "risk": risk,
        "restart_required": restart_required,
        "reason": reason,
        "file": where.get("file") if where else None,
        "line": where.get("line") if where else None,
    }


def sort_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def order(change: dict[str, Any]) -> tuple[str, int, str, int]:
        name = change.get("parameter", change.get("rule", ""))
        return (name, CHANGES.index(change["change"]), change["file"] or "", change["line"] or 0)

    return sorted(changes, key=order)


def entries_by_name(parsed: dict[str, Any], field: str = "parameter") -> dict[str, dict[str, Any]]:
    """The effective entries of a parsed form, keyed by name; tolerant of hand-made input."""
    out: dict[str, dict[str, Any]] = {}
    for entry in parsed.get("entries") or []:
        if isinstance(entry, dict) and isinstance(entry.get(field), str):
            out[entry[field]] = entry
    return out


def diff_values(old: dict[str, Any], new: dict[str, Any], canonical: Callable[[str, Any], tuple[Any, str]],
                assess: Callable[[str, str | None, str | None], tuple[str, str]]) -> list[dict[str, Any]]:
    """Added, removed and changed parameters of two parsed files whose values compare by their
    `canonical` key (the shown form is its second part); kinds without a restart notion."""
    before, after = entries_by_name(old), entries_by_name(new)
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old_entry, new_entry = before.get(name), after.get(name)
        old_value = canonical(name, old_entry.get("value")) if old_entry else None
        new_value = canonical(name, new_entry.get("value")) if new_entry else None
        if old_value and new_value and old_value[0] == new_value[0]:
            continue
        change = "added" if old_value is None else "removed" if new_value is None else "changed"
        old_shown = old_value[1] if old_value else None
        new_shown = new_value[1] if new_value else None
        risk, reason = assess(name, old_shown, new_shown)
        changes.append(make_change(name, change, old_shown, new_shown, risk=risk, reason=reason,
                                   restart_required=None, where=new_entry or old_entry))
    return sort_changes(changes)
