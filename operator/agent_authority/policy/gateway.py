"""What the session gateway lets through: a request line → allowed, or refused with the reason.

The gateway sits between a session's agent and the apiserver. Before it forwards anything it
classifies the request the way the apiserver's request-info resolver does (verb, API group,
resource, subresource, namespace, name) and decides here, with no I/O:

- **discovery** (``/api``, ``/apis``, ``/apis/<group>[/<version>]``, ``/version``, ``/openapi/…``)
  and the **self reviews** (``selfsubjectaccessreviews``, ``selfsubjectrulesreviews``,
  ``selfsubjectreviews``) pass without a rule, so ``kubectl`` works and ``kubectl auth can-i``
  never counts as a deviation;
- a **resource request** passes only when one of the session's effective rules (namespace x API
  group x resource x verb, and the object name when the rule lists names) covers it; a refusal
  names the rule that would have been needed;
- **upgrades** (``exec``, ``attach``, ``portforward``, ``proxy``, any ``Upgrade`` header), paths
  that are not Kubernetes API paths (other servers' paths, absolute-form targets), unknown HTTP
  methods and oversized bodies are refused outright.

Refusals that are deviations (the agent asked for something outside its authority) are marked so;
the caller counts them against the grant's ``maxDeniedRequests``. Oversized bodies and malformed
requests are refused without counting: they say nothing about the agent's intent.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence

from agent_authority.models import grant

__all__ = [
    "MAX_BODY_BYTES",
    "AccessMode",
    "Allowed",
    "ModeChoice",
    "Refusal",
    "Refused",
    "RequestInfo",
    "choose_mode",
    "classify",
    "decide",
    "describe",
    "status_body",
]

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Largest request body forwarded (the apiserver's own limit for a JSON body is 3 MiB)."""

UPGRADE_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
SELF_REVIEWS: Mapping[str, frozenset[str]] = {
    "authorization.k8s.io": frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
    "authentication.k8s.io": frozenset({"selfsubjectreviews"}),
}
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


AccessMode = grant.AccessMode


class Refusal(enum.StrEnum):
    """Why the gateway refused a request (also the ``reason`` label of the refusal metric)."""

    OUTSIDE_RULES = "OutsideRules"
    UPGRADE = "Upgrade"
    NOT_AN_API_PATH = "NotAnAPIPath"
    METHOD = "MethodNotAllowed"
    TOO_LARGE = "BodyTooLarge"
    UNAUTHENTICATED = "Unauthenticated"
    SESSION_NOT_ACTIVE = "SessionNotActive"


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    """A request as the apiserver's authorizer sees it."""

    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    discovery: bool = False
    self_review: bool = False

    @property
    def full_resource(self) -> str:
        """``pods`` or ``pods/log``: how RBAC rules name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclasses.dataclass(frozen=True)
class Allowed:
    """Forward it; ``needs_rule`` is False for discovery and self reviews (never deviations)."""

    info: RequestInfo
    needs_rule: bool = True


@dataclasses.dataclass(frozen=True)
class Refused:
    """Refuse it with ``code``; ``deviation`` says whether it counts against the session."""

    reason: Refusal
    message: str
    code: int = 403
    deviation: bool = True
    info: RequestInfo | None = None


Decision = Allowed | Refused


def classify(method: str, path: str, query: Mapping[str, str]) -> RequestInfo | Refused:
    """Resolve ``method path?query`` into a :class:`RequestInfo`, or refuse what is no API call."""
    method = method.upper()
    if not path.startswith("/") or "//" in path or "/../" in path or path.endswith("/.."):
        return Refused(
            Refusal.NOT_AN_API_PATH,
            f"the session gateway forwards Kubernetes API paths only; {path!r} is not one",
        )
    parts = [p for p in path.split("/") if p]
    if method in {"GET", "HEAD"} and _is_discovery(parts):
        return RequestInfo(verb="get", path=path, discovery=True)
    if not parts or parts[0] not in {"api", "apis"}:
        return Refused(
            Refusal.NOT_AN_API_PATH,
            f"the session gateway forwards requests to the Kubernetes API only (/api, /apis); "
            f"{path!r} belongs to another server or is not an API path",
        )
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        group, rest = parts[1] if len(parts) > 1 else "", parts[2:]
    if not rest:
        return Refused(Refusal.NOT_AN_API_PATH, f"{path!r} names no API version")
    version, rest = rest[0], rest[1:]
    watch_prefix = bool(rest) and rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        if len(rest) == 2 or rest[2] in _NAMESPACE_SUBRESOURCES:
            namespace = rest[1]  # the namespace object itself (and its status/finalize)
        else:
            namespace, rest = rest[1], rest[2:]
    if not rest:
        return Refused(Refusal.NOT_AN_API_PATH, f"{path!r} names no resource")
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    extra = rest[3:]
    verb = _verb(method, name, watch_prefix, query)
    if verb is None:
        return Refused(
            Refusal.METHOD,
            f"HTTP method {method} is not forwarded (allowed: GET, HEAD, POST, PUT, PATCH, DELETE)",
            code=405,
            deviation=False,
        )
    info = RequestInfo(
        verb=verb,
        path=path,
        resource_request=True,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        self_review=resource in SELF_REVIEWS.get(group, frozenset()) and verb == "create",
    )
    if extra and subresource not in UPGRADE_SUBRESOURCES:
        return Refused(Refusal.NOT_AN_API_PATH, f"{path!r} is not a Kubernetes API path", info=info)
    if subresource in UPGRADE_SUBRESOURCES:
        return Refused(
            Refusal.UPGRADE,
            f"{describe(info)} is refused: sessions never get exec, attach, port-forward or "
            "proxy access (they run commands in containers or open tunnels)",
            info=info,
        )
    return info


def _is_discovery(parts: Sequence[str]) -> bool:
    if parts in (["api"], ["apis"], ["version"]):
        return True
    if parts and parts[0] == "openapi":
        return True
    if len(parts) == 2 and parts[0] == "api":
        return True  # /api/v1
    return len(parts) in {2, 3} and parts[0] == "apis"  # /apis/<group>[/<version>]


def _verb(method: str, name: str, watch_prefix: bool, query: Mapping[str, str]) -> str | None:
    if method in {"GET", "HEAD"}:
        if watch_prefix or query.get("watch", "").lower() in {"1", "true"}:
            return "watch"
        return "get" if name else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return _METHOD_VERBS.get(method)


def decide(
    info: RequestInfo | Refused,
    rules: Sequence[grant.PolicyRule],
    *,
    upgrade_header: bool = False,
    body_bytes: int | None = None,
) -> Decision:
    """Whether the session with ``rules`` may make the request ``info``."""
    if isinstance(info, Refused):
        return info
    if upgrade_header:
        return Refused(
            Refusal.UPGRADE,
            f"{describe(info)} asks for a connection upgrade (WebSocket/SPDY): sessions never "
            "get exec, attach, port-forward or proxy access",
            info=info,
        )
    if body_bytes is not None and body_bytes > MAX_BODY_BYTES:
        return Refused(
            Refusal.TOO_LARGE,
            f"the request body has {body_bytes} bytes; the session gateway forwards at most "
            f"{MAX_BODY_BYTES} bytes",
            code=413,
            deviation=False,
            info=info,
        )
    if info.discovery or info.self_review:
        return Allowed(info, needs_rule=False)
    if any(_covers(rule, info) for rule in rules):
        return Allowed(info)
    return Refused(
        Refusal.OUTSIDE_RULES,
        f"the session gateway refused {describe(info)}: the session has no rule for it; it "
        f"would need {needed_rule(info)}",
        info=info,
    )


def _covers(rule: grant.PolicyRule, info: RequestInfo) -> bool:
    if not info.namespace or rule.namespace != info.namespace:
        return False  # sessions hold namespaced Roles only: nothing cluster-scoped
    if info.api_group not in rule.api_groups or info.full_resource not in rule.resources:
        return False
    if info.verb not in rule.verbs:
        return False
    if rule.resource_names:
        return info.name in rule.resource_names and info.verb not in {"list", "watch"}
    return True


def needed_rule(info: RequestInfo) -> str:
    """The RBAC rule (as a session's effective rule) that would cover ``info``."""
    names = f", resourceNames: [{info.name}]" if info.name and info.verb != "create" else ""
    where = f"namespace: {info.namespace}, " if info.namespace else "cluster-scoped, "
    return (
        f"{{{where}apiGroups: [{info.api_group!r}], resources: [{info.full_resource}], "
        f"verbs: [{info.verb}]{names}}}"
    )


def describe(info: RequestInfo) -> str:
    """``list secrets in namespace shop``: the request in words (as in deviation messages)."""
    resource = info.full_resource or info.path
    if info.api_group:
        resource += f".{info.api_group}"
    name = f" {info.name!r}" if info.name else ""
    where = f" in namespace {info.namespace}" if info.namespace else ""
    return f"{info.verb} {resource}{name}{where}"


def status_body(
    code: int, reason: str, message: str, info: RequestInfo | None = None
) -> dict[str, object]:
    """A Kubernetes ``Status`` (``kubectl`` prints its message as the error)."""
    body: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if info is not None and info.resource:
        details: dict[str, str] = {"kind": info.resource}
        if info.api_group:
            details["group"] = info.api_group
        if info.name:
            details["name"] = info.name
        body["details"] = details
    return body


@dataclasses.dataclass(frozen=True)
class ModeChoice:
    """The access mode of a new session, or why it cannot be opened."""

    mode: AccessMode | None
    message: str = ""


def choose_mode(
    grant_mode: str | None, default_mode: AccessMode, gateway_enabled: bool
) -> ModeChoice:
    """The grant's mode if it sets one, else the operator's; gateway mode needs a gateway."""
    mode = AccessMode(grant_mode) if grant_mode else default_mode
    if mode is AccessMode.GATEWAY and not gateway_enabled:
        source = "the grant's spec.session.accessMode" if grant_mode else "the operator default"
        return ModeChoice(
            None,
            f"{source} is gateway, but this operator runs no session gateway (start it with "
            "--gateway-port); refusing rather than handing out a token for the apiserver",
        )
    return ModeChoice(mode)
