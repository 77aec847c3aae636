"""What may change in an IncidentSession after it opened, and which denied reads are its own.

- :func:`update_failure` reviews an UPDATE of a session by anyone but the operator: a session
  identity changes no session at all, not even its own (it creates RemediationRequests and
  nothing else, as the admission policy ``agentauthority.io-session-identities-only-request``
  also says); the spec only changes by ``ended`` false → true, and only by whoever may end it
  (:func:`ending_needs_the_end_verb` says when a SubjectAccessReview for the verb ``end`` is
  needed); the operator's annotations and labels (``agentauthority.io/*``, where kopf keeps its
  progress and diff base), its finalizer and status are the operator's alone.
- :func:`is_own_read` says which denied reads are no deviation at all: a ``get`` of the session's
  own IncidentSession or of a request that names it (the operator lets it read those by name, a
  moment after the request appears). Never a list or watch, never anything else.

Pure functions on plain objects as the apiserver sends them (admission review ``oldObject`` and
``object``, audit ``objectRef``): no Kubernetes I/O. Refusals reuse
:class:`sessions.Failure` and :class:`sessions.Reason`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from agent_authority.models import base
from agent_authority.policy import sessions

__all__ = [
    "END_VERB",
    "ReadAttempt",
    "ending_needs_the_end_verb",
    "is_own_read",
    "update_failure",
]

Failure = sessions.Failure
Reason = sessions.Reason


# Updates ----------------------------------------------------------------------------------------

OPERATOR_PREFIX = "agentauthority.io/"
"""Annotations and labels under this prefix are the operator's (kopf's progress and diff base,
the grant and parent labels): nobody else writes them."""
KUBERNETES_FINALIZERS = frozenset({"foregroundDeletion", "orphan"})
"""Finalizers the apiserver and garbage collector manage during a deletion."""
END_VERB = "end"
"""The custom RBAC verb on ``incidentsessions`` that lets a person end anyone's session."""


def _requester_of(body: Mapping[str, object]) -> str | None:
    spec = body.get("spec")
    requester = spec.get("requester") if isinstance(spec, Mapping) else None
    name = requester.get("username") if isinstance(requester, Mapping) else None
    return name if isinstance(name, str) else None


def _section(body: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = body.get(key)
    return value if isinstance(value, Mapping) else {}


def _is_ended(spec: Mapping[str, object]) -> bool:
    return spec.get("ended") is True


def ending_needs_the_end_verb(
    old: Mapping[str, object], new: Mapping[str, object], caller: base.UserInfo
) -> bool:
    """Whether this update ends the session on behalf of someone other than its requester:
    then the caller must hold the verb ``end`` (a SubjectAccessReview)."""
    ending = not _is_ended(_section(old, "spec")) and _is_ended(_section(new, "spec"))
    return ending and caller.username != _requester_of(old)


def update_failure(
    old: Mapping[str, object],
    new: Mapping[str, object],
    caller: base.UserInfo,
    *,
    holds_end_verb: bool,
) -> Failure | None:
    """Why an UPDATE of a session by ``caller`` (never the operator) is refused, or None.

    ``old``/``new`` are the objects before and after; ``holds_end_verb`` is the answer to the
    SubjectAccessReview that :func:`ending_needs_the_end_verb` asks for (ignored otherwise).
    """
    if sessions.is_session_identity(caller):
        return Failure(
            Reason.SESSION_IDENTITY,
            f"spec: '{caller.username}' is the identity of a session, and a session token "
            "changes no IncidentSession, not even its own (allowed: its requester ends it, or "
            f"someone granted '{END_VERB}' by RBAC)",
        )
    old_spec, new_spec = _section(old, "spec"), _section(new, "spec")
    for key in sorted(set(old_spec) | set(new_spec)):
        if key != "ended" and old_spec.get(key) != new_spec.get(key):
            return Failure(
                Reason.SPEC_IMMUTABLE,
                f"spec.{key}: a session's spec does not change after it opened "
                "(allowed: only spec.ended, from false to true)",
            )
    if _is_ended(old_spec) and not _is_ended(new_spec):
        return Failure(
            Reason.SPEC_IMMUTABLE,
            "spec.ended: an ended session stays ended (allowed: true)",
        )
    if ending_needs_the_end_verb(old, new, caller) and not holds_end_verb:
        return Failure(
            Reason.NOT_ALLOWED_TO_END,
            f"spec.ended: '{caller.username}' did not open this session (its requester is "
            f"'{_requester_of(old) or 'unknown'}') and does not hold the verb '{END_VERB}' on "
            "incidentsessions (allowed: the requester, or someone granted "
            f"'{END_VERB}' by RBAC)",
        )
    old_meta, new_meta = _section(old, "metadata"), _section(new, "metadata")
    for field in ("annotations", "labels"):
        before, after = _section(old_meta, field), _section(new_meta, field)
        keys = {k for k in (*before, *after) if str(k).startswith(OPERATOR_PREFIX)}
        for key in sorted(keys):
            if before.get(key) != after.get(key):
                return Failure(
                    Reason.OPERATOR_OWNED,
                    f"metadata.{field}[{key}]: written only by the operator (allowed: "
                    f"{field} outside the '{OPERATOR_PREFIX}' prefix)",
                )
    if _finalizers(old_meta) != _finalizers(new_meta):
        return Failure(
            Reason.OPERATOR_OWNED,
            "metadata.finalizers: the operator's finalizer is added and removed only by the "
            "operator, after it revoked the session's credentials (allowed: end the session, "
            "or delete it and let the operator finish)",
        )
    if old.get("status") != new.get("status"):
        return Failure(
            Reason.OPERATOR_OWNED,
            "status: written only by the operator (allowed: end the session with spec.ended)",
        )
    return None


def _finalizers(meta: Mapping[str, object]) -> frozenset[str]:
    value = meta.get("finalizers")
    names = value if isinstance(value, list) else []
    return frozenset(str(n) for n in names) - KUBERNETES_FINALIZERS


# Own reads ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReadAttempt:
    """What a denied request asked for (from its audit event's ``verb`` and ``objectRef``)."""

    verb: str
    api_group: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""


OWN_GROUP = "agentauthority.io"


def is_own_read(
    attempt: ReadAttempt,
    *,
    session_namespace: str,
    session_name: str,
    request_session: str | None,
) -> bool:
    """Whether a denied request was the session reading what is its own, which is no deviation.

    ``request_session`` is ``spec.sessionRef.name`` of the request named by the attempt, as read
    by the caller (None when it is not a request, or there is no such request).
    """
    if (
        attempt.verb != "get"
        or attempt.api_group != OWN_GROUP
        or attempt.subresource
        or not attempt.name
        or attempt.namespace != session_namespace
    ):
        return False
    if attempt.resource == "incidentsessions":
        return attempt.name == session_name
    if attempt.resource == "remediationrequests":
        return request_session == session_name
    return False
