"""Where the operator may create a session's identity and access: the namespaces the installer
gave it a Role in.

The operator's ClusterRole holds no identity, token or RBAC writes. The installer gives it, per
namespace, the session Role (``config/rbac/operator-session-namespace.yaml``: ServiceAccounts,
Secrets, TokenRequests, Roles and RoleBindings) where sessions live, and the scope Role
(``config/rbac/operator-scope-namespace.yaml``: Roles and RoleBindings only) where session scopes
read. :func:`needed` lists what one session needs, and :func:`refusal` decides, from the ones the
apiserver said the operator lacks (SelfSubjectAccessReviews, asked before anything is created),
whether the session is refused and with which words: every namespace named, with the Role to
install there. A namespace a ``namespaceSelector`` selected counts like a listed one: the session
is refused, never silently narrowed (the message says which scope selected it).

Pure: no client, no clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence

from agent_authority.policy import rbac

RBAC_GROUP = "rbac.authorization.k8s.io"
SESSION_ROLE_FILE = "config/rbac/operator-session-namespace.yaml"
SCOPE_ROLE_FILE = "config/rbac/operator-scope-namespace.yaml"

SESSION_NAMESPACE_NEEDS: tuple[tuple[str, str, str], ...] = (
    ("", "serviceaccounts", "create"),
    ("", "serviceaccounts", "delete"),
    ("", "secrets", "create"),
    ("", "secrets", "delete"),
    ("", "serviceaccounts/token", "create"),
    (RBAC_GROUP, "roles", "create"),
    (RBAC_GROUP, "roles", "delete"),
    (RBAC_GROUP, "rolebindings", "create"),
    (RBAC_GROUP, "rolebindings", "delete"),
)
"""(group, resource, verb) the operator needs where a session lives: create its identity and
access, and take both back (it never creates what it could not delete)."""

SCOPE_NAMESPACE_NEEDS: tuple[tuple[str, str, str], ...] = (
    (RBAC_GROUP, "roles", "create"),
    (RBAC_GROUP, "roles", "delete"),
    (RBAC_GROUP, "rolebindings", "create"),
    (RBAC_GROUP, "rolebindings", "delete"),
)
"""(group, resource, verb) the operator needs in each other namespace a session's scopes read."""


class Reason(enum.StrEnum):
    """Why the operator refuses a session it may not give access to."""

    SESSION_NAMESPACE_NOT_ENABLED = "SessionNamespaceNotEnabled"
    SCOPE_NAMESPACES_NOT_ENABLED = "ScopeNamespacesNotEnabled"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """The session is refused before anything is created."""

    reason: Reason
    message: str


def needed(session_namespace: str, scope_namespaces: Iterable[str]) -> list[rbac.Permission]:
    """Every permission the operator must hold to create (and revoke) a session living in
    ``session_namespace`` whose rules reach ``scope_namespaces``."""
    out = [
        rbac.Permission(namespace=session_namespace, api_group=g, resource=r, verb=v)
        for g, r, v in SESSION_NAMESPACE_NEEDS
    ]
    for namespace in sorted(set(scope_namespaces) - {session_namespace}):
        out += [
            rbac.Permission(namespace=namespace, api_group=g, resource=r, verb=v)
            for g, r, v in SCOPE_NAMESPACE_NEEDS
        ]
    return out


def _missing_text(missing: Sequence[rbac.Permission]) -> str:
    return ", ".join(f"{p.verb} {p.resource}" for p in missing)


def _selected_by(namespace: str, resolved: Mapping[str, Sequence[str]]) -> str:
    scopes = sorted(name for name, namespaces in resolved.items() if namespace in namespaces)
    if not scopes:
        return ""
    return " (selected by the namespaceSelector of scope " + ", ".join(map(repr, scopes)) + ")"


def refusal(
    session_namespace: str,
    missing: Sequence[rbac.Permission],
    resolved: Mapping[str, Sequence[str]] | None = None,
) -> Refusal | None:
    """The refusal of a session whose operator lacks ``missing`` (from :func:`needed`), or
    ``None`` when nothing is missing. The session namespace is decided first: without its
    session Role nothing at all can be created there."""
    if not missing:
        return None
    own = [p for p in missing if p.namespace == session_namespace]
    if own:
        return Refusal(
            Reason.SESSION_NAMESPACE_NOT_ENABLED,
            f"the operator may not create session identities in namespace "
            f"{session_namespace!r} (it lacks: {_missing_text(own)}), so no session can live "
            f"there; nothing was created. Install the operator's session Role in "
            f"{session_namespace!r} ({SESSION_ROLE_FILE}; Helm value sessionNamespaces), or "
            f"open the session in a namespace that has it",
        )
    by_namespace: dict[str, list[rbac.Permission]] = {}
    for p in missing:
        by_namespace.setdefault(p.namespace, []).append(p)
    parts = [
        f"{ns!r}{_selected_by(ns, resolved or {})} (it lacks: {_missing_text(perms)})"
        for ns, perms in sorted(by_namespace.items())
    ]
    names = ", ".join(repr(ns) for ns in sorted(by_namespace))
    return Refusal(
        Reason.SCOPE_NAMESPACES_NOT_ENABLED,
        f"the session's scopes read namespace(s) where the operator may not write Roles and "
        f"RoleBindings: {'; '.join(parts)}; nothing was created. Install the operator's scope "
        f"Role in {names} ({SCOPE_ROLE_FILE}; Helm value scopeNamespaces), or request scopes "
        f"that leave them out",
    )
