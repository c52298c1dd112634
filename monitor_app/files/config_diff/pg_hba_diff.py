"""Differences between two pg_hba rule lists, and how risky each is.

Rules present in both versions are matched by identity; their method and options are compared
as the rule's value. Because the first matching rule decides, order matters: among the rules
present in both versions, the largest set that kept its relative order is found (a longest
increasing subsequence, which for two orderings of the same rules equals their longest common
subsequence, in O(n log n)) and every other surviving rule is reported as `moved`. That is
the smallest set of moves that explains the new order. A move's `old`/`new` are the rule's
positions in each version; a rule that moved and changed is reported once for each.

Risk: an added or changed rule with method `trust`, or one that applies to any address
(`all`, `0.0.0.0/0`, `::/0`) with any method but `reject` -> critical; method `password`
(cleartext) or `md5` -> high; removing a `reject` rule -> high; a moved rule -> medium (it
changes which rule a connection meets first); other changes -> medium, additions of rules with
a strong method and removals of accepting rules -> low. A reload applies pg_hba, so
`restart_required` is always False.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from .model import entries_by_name, make_change, sort_changes

_ANY_ADDRESS = ("all", "0.0.0.0/0", "::/0")


def rule_value(rule: dict[str, Any]) -> str:
    options = rule.get("options") or {}
    parts = [str(rule.get("method"))] + [f"{name}={value}" for name, value in sorted(options.items())]
    return " ".join(parts)


def kept_in_order(sequence: list[int]) -> set[int]:
    """Positions (indexes into `sequence`) of one longest strictly increasing subsequence."""
    tails: list[int] = []  # tails[k] = smallest tail value of an increasing run of length k+1
    tail_at: list[int] = []  # index in sequence of that tail
    previous = [-1] * len(sequence)
    for index, value in enumerate(sequence):
        slot = bisect_left(tails, value)
        if slot:
            previous[index] = tail_at[slot - 1]
        if slot == len(tails):
            tails.append(value)
            tail_at.append(index)
        else:
            tails[slot] = value
            tail_at[slot] = index
    kept: set[int] = set()
    cursor = tail_at[-1] if tail_at else -1
    while cursor >= 0:
        kept.add(cursor)
        cursor = previous[cursor]
    return kept


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    before, after = entries_by_name(old, "rule"), entries_by_name(new, "rule")
    changes = []
    for name in before.keys() - after.keys():
        rule = before[name]
        risk, reason = _removed_risk(rule)
        changes.append(_change(name, "removed", rule_value(rule), None, risk, reason, rule))
    for name in after.keys() - before.keys():
        rule = after[name]
        risk, reason = _granting_risk(rule)
        changes.append(_change(name, "added", None, rule_value(rule), risk, reason, rule))
    for name in before.keys() & after.keys():
        old_value, new_value = rule_value(before[name]), rule_value(after[name])
        if old_value != new_value:
            risk, reason = _granting_risk(after[name], changed=True)
            changes.append(_change(name, "changed", old_value, new_value, risk, reason, after[name]))
    changes.extend(_moves(old, new, before.keys() & after.keys(), after))
    return sort_changes(changes)


def _moves(old: dict[str, Any], new: dict[str, Any], surviving: set[str],
           after: dict[str, Any]) -> list[dict[str, Any]]:
    old_order = [e["rule"] for e in old.get("entries") or [] if isinstance(e, dict) and e.get("rule") in surviving]
    new_order = [e["rule"] for e in new.get("entries") or [] if isinstance(e, dict) and e.get("rule") in surviving]
    position = {name: index for index, name in enumerate(old_order)}
    kept = kept_in_order([position[name] for name in new_order])
    # Shown as each version's own rule numbers, the numbers a reader of the file would count.
    old_number = _rule_numbers(old)
    new_number = _rule_numbers(new)
    moves = []
    for index, name in enumerate(new_order):
        if index in kept:
            continue
        reason = ("rule order changed relative to the other rules; the first matching rule decides, "
                  "so this changes who gets in")
        moves.append(_change(name, "moved", f"position {old_number[name]}", f"position {new_number[name]}",
                             "medium", reason, after[name]))
    return moves


def _rule_numbers(parsed: dict[str, Any]) -> dict[str, int]:
    rules = [e["rule"] for e in parsed.get("entries") or [] if isinstance(e, dict) and isinstance(e.get("rule"), str)]
    return {name: number for number, name in enumerate(rules, start=1)}


def _change(name: str, change: str, old: str | None, new: str | None, risk: str, reason: str,
            where: dict[str, Any]) -> dict[str, Any]:
    return make_change(name, change, old, new, risk=risk, reason=reason, restart_required=False,
                       where=where, identity="rule")


def _granting_risk(rule: dict[str, Any], changed: bool = False) -> tuple[str, str]:
    method = rule.get("method")
    if method == "trust":
        return "critical", "method trust: anyone matching this rule connects without a password"
    if rule.get("address") in _ANY_ADDRESS and method != "reject":
        return "critical", "rule accepts connections from any address"
    if method in ("password", "md5"):
        what = "sends passwords in clear text" if method == "password" else "uses weak MD5 password hashing"
        return "high", f"method {method} {what}"
    if method == "reject":
        return "low", "rule rejects connections"
    if changed:
        return "medium", "authentication method or options changed"
    return "low", "rule grants access with a strong authentication method"


def _removed_risk(rule: dict[str, Any]) -> tuple[str, str]:
    if rule.get("method") == "reject":
        return "high", "a reject rule was removed: connections it blocked may now match a later rule"
    return "low", "access through this rule is withdrawn"
