"""Input the CRD schema admits but the models refuse, described so a person can fix it.

The mutating webhooks and the controllers parse with the pydantic models; a schema-valid object
can still fail there (``evidence[].observedAt: []``, a year-zero timestamp).
:func:`describe_invalid` turns the error into one line naming each field and the reason.
"""

from __future__ import annotations

import pydantic


def describe_invalid(error: pydantic.ValidationError, root: str = "spec", limit: int = 5) -> str:
    """``spec.evidence[0].observedAt: Input should be a valid datetime`` for each problem."""
    problems = []
    for item in error.errors()[:limit]:
        path = root
        for part in item.get("loc", ()):
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        problems.append(f"{path}: {item.get('msg', 'invalid')}")
    more = len(error.errors()) - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
