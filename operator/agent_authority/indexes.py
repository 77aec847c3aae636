"""kopf indexes shared by controllers and webhooks (kopf passes them to every handler as keyword
arguments, by the index function's name).

``sessions_by_grant``: grant name → (namespace, name, phase, creationTimestamp) of every
IncidentSession. Keyed by ``spec.grantRef.name``, which CEL makes immutable, so nobody can move a
session out of its grant's count. Counting from the index replaces listing every session of a
grant on each admission, which grew with the number of sessions.

``active_sessions_by_grant``: grant name → uid of every IncidentSession whose phase is Active;
the session controller counts a grant's sessions from it (plus the ones it is activating) under a
per-grant lock, so the concurrent-session cap is exact.

``requests_by_session``: ``<namespace>/<session>`` → name of every RemediationRequest naming that
session (``spec.sessionRef.name``); the session's own-reads Role lists exactly these names.

``sessions_by_name``: ``<namespace>/<name>`` → what the approval webhook needs of the session
as last watched: its name and uid, ``spec.grantRef``, ``spec.requester``, ``spec.parentSession``
(all immutable after creation) and ``status.phase`` / ``status.serviceAccountName``. The webhook
admits an approval on it and refuses only on a fresh read (see
:mod:`agent_authority.webhooks.requests`).

``grants_by_name``: grant name → the grant as last watched (name, resourceVersion, spec). Only
the admission webhooks read it (a session's create does not GET the grant twice; an approval
does not GET it at all); it may lag a change by a watch round trip, which is why the webhooks
refuse only on a fresh read and the controllers decide only on fresh reads (see
:mod:`agent_authority.webhooks.sessions` and :mod:`agent_authority.webhooks.requests`).

The index functions are ``async`` although they never await: kopf runs a sync handler in a worker
thread, one hop per watch event, which under a burst of sessions kept dozens of threads (and
their stacks and malloc arenas) alive for work of a few microseconds.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from agent_authority.models import GROUP, VERSION

Sibling = tuple[str, str, str | None, str]
"""(namespace, name, phase, creationTimestamp)"""


@kopf.index(GROUP, VERSION, "incidentsessions")
async def sessions_by_grant(
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


@kopf.index(GROUP, VERSION, "incidentsessions")
async def active_sessions_by_grant(
    spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[str, str] | None:
    if status.get("phase") != "Active":
        return None
    grant = (spec.get("grantRef") or {}).get("name")
    return {str(grant): str(meta.uid)} if isinstance(grant, str) else None


def active_uids(index: Mapping[str, Iterable[str]] | None, grant: str) -> set[str]:
    """Uids of the grant's Active sessions as indexed (empty without an index)."""
    return set(index.get(grant, [])) if index is not None else set()


SESSION_SPEC_FIELDS = ("grantRef", "requester", "parentSession")
SESSION_STATUS_FIELDS = ("phase", "serviceAccountName")


@kopf.index(GROUP, VERSION, "incidentsessions")
async def sessions_by_name(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    **_: Any,
) -> dict[str, Any]:
    return {
        f"{namespace or ''}/{name}": {
            "metadata": {
                "name": name,
                "namespace": namespace or "",
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "spec": {k: copy.deepcopy(spec[k]) for k in SESSION_SPEC_FIELDS if k in spec},
            "status": {k: copy.deepcopy(status[k]) for k in SESSION_STATUS_FIELDS if k in status},
        }
    }


def session(
    index: Mapping[str, Iterable[Any]] | None, namespace: str, name: str
) -> dict[str, Any] | None:
    """The watched copy of session ``namespace/name`` (a fresh deep copy); None when not
    indexed."""
    if index is None:
        return None
    for body in index.get(f"{namespace}/{name}", []):
        return copy.deepcopy(dict(body))
    return None


@kopf.index(GROUP, VERSION, "remediationrequests")
async def requests_by_session(
    name: str, namespace: str | None, spec: kopf.Spec, **_: Any
) -> dict[str, str] | None:
    ref = spec.get("sessionRef")
    session = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(session, str) or not session:
        return None
    return {f"{namespace or ''}/{session}": name}


def requests_of(
    index: Mapping[str, Iterable[str]] | None, namespace: str, session: str
) -> list[str] | None:
    """Names of the requests naming a session, sorted; None without an index."""
    if index is None:
        return None
    return sorted(set(index.get(f"{namespace}/{session}", [])))


@kopf.index(GROUP, VERSION, "agentgrants")
async def grants_by_name(name: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any) -> dict[str, Any]:
    plain_spec = copy.deepcopy({key: spec[key] for key in spec})
    return {
        name: {
            "metadata": {"name": name, "resourceVersion": meta.get("resourceVersion")},
            "spec": plain_spec,
        }
    }


def grant(index: Mapping[str, Iterable[Any]] | None, name: str) -> dict[str, Any] | None:
    """The watched copy of grant ``name`` (a fresh deep copy); None when not indexed."""
    if index is None:
        return None
    for body in index.get(name, []):
        return copy.deepcopy(dict(body))
    return None
