"""kopf indexes shared by controllers and webhooks (kopf passes them to every handler as keyword
arguments, by the index function's name).

``sessions_by_grant``: grant name → (namespace, name, phase, creationTimestamp) of every
IncidentSession. Keyed by ``spec.grantRef.name``, which CEL makes immutable, so nobody can move a
session out of its grant's count. Counting from the index replaces listing every session of a
grant on each admission, which grew with the number of sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from agent_authority.models import GROUP, VERSION

Sibling = tuple[str, str, str | None, str]
"""(namespace, name, phase, creationTimestamp)"""


@kopf.index(GROUP, VERSION, "incidentsessions")
def sessions_by_grant(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    **_: Any,
) -> dict[str, Sibling]:
    grant = str((spec.get("grantRef") or {}).get("name", ""))
    phase = status.get("phase")
    created = str(meta.creation_timestamp)
    return {grant: (namespace or "", name, str(phase) if phase else None, created)}


def siblings(index: Mapping[str, Iterable[Sibling]] | None, grant: str) -> list[Sibling] | None:
    """The indexed sessions of ``grant``; None without an index (callers then list)."""
    if index is None:
        return None
    return list(index.get(grant, []))
