"""A session's lineage: the session, its parent, its parent's parent, ... up to the root.

Who may decide a sub-agent's request depends on every session above it (see
``policy.approvals``), so the approval webhook and the executor both walk the chain through
``spec.parentSession`` here. The walk is bounded by the grant's ``session.maxSubAgentDepth`` and
fails closed: a missing ancestor, a chain longer than the bound, or a cycle is a
:class:`LineageError`, never a shorter chain.
"""

from __future__ import annotations

from agent_authority.kube import api, resources
from agent_authority.policy import approvals

SA_PREFIX = "system:serviceaccount:"


class LineageError(Exception):
    """The chain of sessions cannot be established; the message says which link is missing."""


async def chain(
    kube: api.Kube, namespace: str, session_body: api.Json, max_depth: int
) -> list[api.Json]:
    """``[session, parent, ..., root]`` of ``session_body`` (parents live in its namespace)."""
    found = [session_body]
    seen = {session_body["metadata"]["name"]}
    current = session_body
    while parent := (current.get("spec") or {}).get("parentSession"):
        if not isinstance(parent, str) or not parent:
            raise LineageError(
                f"session {current['metadata']['name']!r} has an unreadable spec.parentSession"
            )
        if parent in seen:
            raise LineageError(f"sessions {sorted(seen)} name each other as parents (a cycle)")
        if len(found) > max_depth:
            raise LineageError(
                f"session {session_body['metadata']['name']!r} is more than {max_depth} "
                "sub-agent level(s) below its root, beyond the grant's session.maxSubAgentDepth"
            )
        parent_body = await resources.get_session(kube, namespace, parent)
        if parent_body is None:
            raise LineageError(
                f"ancestor session {parent!r} of {session_body['metadata']['name']!r} no longer "
                "exists, so who acts for the request's lineage cannot be established"
            )
        found.append(parent_body)
        seen.add(parent)
        current = parent_body
    return found


def identities(namespace: str, bodies: list[api.Json]) -> list[approvals.SessionIdentities]:
    """Who acts for each session of a chain (its requester and its ServiceAccount)."""
    out = []
    for body in bodies:
        requester = ((body.get("spec") or {}).get("requester") or {}).get("username")
        account = (body.get("status") or {}).get("serviceAccountName")
        out.append(
            approvals.SessionIdentities(
                name=str(body["metadata"]["name"]),
                requester=str(requester) if requester else None,
                service_account=f"{SA_PREFIX}{namespace}:{account}" if account else None,
            )
        )
    return out
