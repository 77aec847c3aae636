"""How session decisions word their messages: short listings, quoted names, plurals, RBAC rules.

Shared by :mod:`sessions` and :mod:`grant_changes` so that a refusal at admission and a revocation
after a grant change name permissions and namespaces the same way. Pure string helpers, no policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_authority.models import grant

__all__ = ["LISTED", "describe_rule", "listing", "plural", "quoted"]

LISTED = 5
"""How many items a message lists before it says "and N more"."""


def listing(items: Sequence[object]) -> str:
    """Items joined for a message, the first few only: ``a, b, c and 2 more``; ``none`` if empty."""
    if not items:
        return "none"
    shown = ", ".join(str(item) for item in items[:LISTED])
    more = len(items) - LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def quoted(items: Sequence[str]) -> str:
    return ", ".join(f"'{item}'" for item in items)


def plural(word: str, items: Sequence[object]) -> str:
    return word if len(items) == 1 else f"{word}s"


def describe_rule(rule: grant.PolicyRule) -> str:
    kinds = [f"{r}.{g}" if g else r for g in rule.api_groups for r in rule.resources]
    names = f" named {quoted(rule.resource_names)}" if rule.resource_names else ""
    return f"{'/'.join(rule.verbs)} {','.join(kinds)}{names} in {rule.namespace}"
