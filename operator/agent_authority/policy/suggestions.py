"""Suggestions for misspelt names: ``did you mean 'shop-workloads'?``.

Shared by ``grant lint`` (unknown fields of a grant) and the admission refusals that name
something the user typed (a session's scope names), so both suggest the same way. Pure string
matching (difflib's ratio, cut-off 0.6), no policy.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name``, when one is close enough to be a typo of it."""
    found = difflib.get_close_matches(name, list(candidates), n=1)
    return found[0] if found and found[0] != name else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a close candidate, else the empty string."""
    match = closest(name, candidates)
    return f"; did you mean '{match}'?" if match else ""
