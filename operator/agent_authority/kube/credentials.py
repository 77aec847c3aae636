"""A session's credentials in the cluster: ServiceAccount, Secret, token, Roles and RoleBindings.

Every object carries the label ``agentauthority.io/session-uid`` so that revocation and the
start-up sweep find them in every namespace. Revocation order is the point of this module:
RoleBindings first (authorization is gone within milliseconds: RBAC is served from informers),
then the bound Secret and the ServiceAccount (the token stops authenticating once the apiserver's
10 s token cache forgets it), then the Roles.

What a session token may do in its own namespace besides its scopes: ``create``
RemediationRequests, and ``get`` — by ``resourceNames`` only — its own IncidentSession and the
requests that name it (:func:`ensure_own_reads`, kept up to date as requests appear). It never
lists or watches requests, so it sees nothing of other sessions'.

Tokens are minted for the session's remaining life (:func:`token_seconds`), never below the
TokenRequest minimum of 600 s, so a token outlives its session by at most that minimum even when
nobody revokes it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from agent_authority.kube import api, errors
from agent_authority.models import GROUP, base, grant

SESSION_UID = "agentauthority.io/session-uid"
SESSION_NAME = "agentauthority.io/session"
MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "agentauthority.io/component"
OPERATOR = "agent-authority"
RBAC_GROUP = "rbac.authorization.k8s.io"
MIN_TOKEN_SECONDS = 600
"""The TokenRequest API refuses anything shorter (kube-apiserver validation)."""
LEGACY_TOKEN_SECONDS = 3607
"""The kubelet's legacy default: the apiserver silently extends a token asked for exactly this
long to a year (``--service-account-extend-token-expiration``), so it is never asked for."""


@dataclasses.dataclass(frozen=True)
class SessionRef:
    """Which session the objects belong to, and how they are named."""

    namespace: str
    name: str
    uid: str
    api_version: str = f"{GROUP}/v1alpha1"
    kind: str = "IncidentSession"

    @property
    def base_name(self) -> str:
        digest = hashlib.sha256(self.uid.encode()).hexdigest()[:8]
        return f"aa-{self.name[:40].rstrip('-.')}-{digest}"

    @property
    def service_account(self) -> str:
        return self.base_name

    @property
    def secret(self) -> str:
        return f"{self.base_name}-token"

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def labels(self, component: str) -> dict[str, str]:
        return {
            MANAGED_BY: OPERATOR,
            SESSION_UID: self.uid,
            SESSION_NAME: self.name[:63],
            COMPONENT: component,
        }

    def owner(self) -> list[dict[str, Any]]:
        """An ownerReference (same namespace only): the garbage collector's safety net."""
        return [
            {
                "apiVersion": self.api_version,
                "kind": self.kind,
                "name": self.name,
                "uid": self.uid,
                "blockOwnerDeletion": False,
            }
        ]


def _meta(ref: SessionRef, name: str, namespace: str, component: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": ref.labels(component),
    }
    if namespace == ref.namespace:
        meta["ownerReferences"] = ref.owner()
    return meta


async def ensure_identity(kube: api.Kube, ref: SessionRef) -> str:
    """Create the session's ServiceAccount and Secret if missing; returns the Secret's uid."""
    sa = {
        "metadata": _meta(ref, ref.service_account, ref.namespace, "identity"),
        "automountServiceAccountToken": False,
    }
    secret = {
        "metadata": _meta(ref, ref.secret, ref.namespace, "token"),
        "type": "Opaque",
    }
    _, created = await asyncio.gather(
        api.create_or_get(kube.core.create_namespaced_service_account, ref.namespace, sa),
        api.create_or_get(kube.core.create_namespaced_secret, ref.namespace, secret),
    )
    if created is None:  # it existed already (a retry, or a rotation): read its uid
        created = await api.call(kube.core.read_namespaced_secret, ref.secret, ref.namespace)
    return str(created["metadata"]["uid"])


def _role(ref: SessionRef, namespace: str, rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": _meta(ref, ref.base_name, namespace, "access"), "rules": list(rules)}


def _binding(
    ref: SessionRef, name: str, namespace: str, role: str, subjects: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "metadata": _meta(ref, name, namespace, "access"),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
        "subjects": subjects,
    }


def rules_by_namespace(rules: Iterable[grant.PolicyRule]) -> dict[str, list[dict[str, Any]]]:
    """Group compiled rules into RBAC ``rules`` lists per namespace."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        entry: dict[str, Any] = {
            "apiGroups": list(rule.api_groups),
            "resources": list(rule.resources),
            "verbs": list(rule.verbs),
        }
        if rule.resource_names:
            entry["resourceNames"] = list(rule.resource_names)
        out.setdefault(rule.namespace, []).append(entry)
    return out


def agent_rules() -> list[dict[str, Any]]:
    """What every session token may do in its own namespace: ask for remediations (reading them
    back is :func:`own_read_rules`, by name)."""
    return [{"apiGroups": [GROUP], "resources": ["remediationrequests"], "verbs": ["create"]}]


def own_read_rules(ref: SessionRef, requests: Iterable[str]) -> list[dict[str, Any]]:
    """``get`` on the session's own IncidentSession and on its own requests, by name only (an
    empty ``resourceNames`` would mean every name, so no requests means no such rule)."""
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [GROUP],
            "resources": ["incidentsessions"],
            "verbs": ["get"],
            "resourceNames": [ref.name],
        }
    ]
    names = sorted(set(requests))
    if names:
        rules.append(
            {
                "apiGroups": [GROUP],
                "resources": ["remediationrequests"],
                "verbs": ["get"],
                "resourceNames": names,
            }
        )
    return rules


def _own(ref: SessionRef) -> str:
    return f"{ref.base_name}-own"


async def ensure_own_reads(kube: api.Kube, ref: SessionRef, requests: Iterable[str]) -> None:
    """Create or replace the Role (and its binding) letting the session read what is its own."""
    await _apply_role(kube, ref.namespace, _own_role(ref, requests))
    await _apply_binding(kube, ref.namespace, _own_binding(ref))


def _own_role(ref: SessionRef, requests: Iterable[str]) -> dict[str, Any]:
    return {
        "metadata": _meta(ref, _own(ref), ref.namespace, "own"),
        "rules": own_read_rules(ref, requests),
    }


def _own_binding(ref: SessionRef) -> dict[str, Any]:
    name = _own(ref)
    subject = [{"kind": "ServiceAccount", "name": ref.service_account, "namespace": ref.namespace}]
    return _binding(ref, name, ref.namespace, name, subject)


def token_seconds(remaining: float, ceiling: int) -> int:
    """How long to ask a session token to live: the session's remaining seconds, at least the
    TokenRequest minimum, at most ``ceiling``, and never the legacy 3607 s."""
    seconds = min(max(int(remaining) + 1, MIN_TOKEN_SECONDS), max(ceiling, MIN_TOKEN_SECONDS))
    return seconds - 1 if seconds == LEGACY_TOKEN_SECONDS else seconds


def requester_subject(user: base.UserInfo) -> dict[str, Any]:
    prefix = "system:serviceaccount:"
    if user.username.startswith(prefix):
        namespace, _, name = user.username[len(prefix) :].partition(":")
        return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return {"kind": "User", "apiGroup": RBAC_GROUP, "name": user.username}


async def _apply_role(kube: api.Kube, namespace: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    created = await api.create_or_get(kube.rbac.create_namespaced_role, namespace, body)
    if created is None:
        await api.call(kube.rbac.replace_namespaced_role, name, namespace, body)


async def _apply_binding(kube: api.Kube, namespace: str, body: dict[str, Any]) -> None:
    await api.create_or_get(kube.rbac.create_namespaced_role_binding, namespace, body)


async def ensure_access(
    kube: api.Kube,
    ref: SessionRef,
    rules: Sequence[grant.PolicyRule],
    requester: base.UserInfo,
    *,
    prune: bool = True,
) -> None:
    """Make the session's Roles/RoleBindings exactly ``rules`` (plus its own-namespace rights).

    Narrowing replaces Roles in place and deletes the RoleBindings of namespaces that dropped out.
    The requester gets ``get`` on the session's Secret only, by ``resourceNames``.
    """
    namespaces = await ensure_roles(kube, ref, rules)
    await ensure_bindings(kube, ref, namespaces, requester)
    if prune:  # a brand-new session has nothing to prune
        await _prune(kube, ref, keep=set(namespaces))


async def ensure_roles(
    kube: api.Kube, ref: SessionRef, rules: Sequence[grant.PolicyRule]
) -> list[str]:
    """Create or replace the session's Roles (one per namespace, and the requester's); the
    namespaces that have one. Bindings come after: binding a Role needs the Role to exist."""
    by_ns = rules_by_namespace(rules)
    by_ns.setdefault(ref.namespace, [])
    by_ns[ref.namespace] = by_ns[ref.namespace] + agent_rules()
    reader = {
        "metadata": _meta(ref, _reader(ref), ref.namespace, "requester"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get"],
                "resourceNames": [ref.secret],
            }
        ],
    }
    await asyncio.gather(
        *[_apply_role(kube, ns, _role(ref, ns, ns_rules)) for ns, ns_rules in by_ns.items()],
        _apply_role(kube, ref.namespace, reader),
    )
    return list(by_ns)


OnBound = Callable[[str, str], Awaitable[None]]
"""Called with (namespace, name) of each RoleBinding right after it is written."""


async def ensure_bindings(
    kube: api.Kube,
    ref: SessionRef,
    namespaces: Sequence[str],
    requester: base.UserInfo,
    *,
    on_bound: OnBound | None = None,
) -> None:
    """Bind the session's ServiceAccount to its Roles, and the requester to its Secret reader;
    ``on_bound`` is awaited after each binding is written (readiness checks start there)."""
    sa_subject = [
        {"kind": "ServiceAccount", "name": ref.service_account, "namespace": ref.namespace}
    ]
    reader = _reader(ref)

    async def bind(namespace: str, body: dict[str, Any]) -> None:
        await _apply_binding(kube, namespace, body)
        if on_bound is not None:
            await on_bound(namespace, body["metadata"]["name"])

    await asyncio.gather(
        *[
            bind(ns, _binding(ref, ref.base_name, ns, ref.base_name, sa_subject))
            for ns in namespaces
        ],
        bind(
            ref.namespace,
            _binding(ref, reader, ref.namespace, reader, [requester_subject(requester)]),
        ),
    )


def reader_name(ref: SessionRef) -> str:
    """Name of the Role and RoleBinding letting the requester read the session's Secret."""
    return _reader(ref)


def _reader(ref: SessionRef) -> str:
    return f"{ref.base_name}-requester"


async def _prune(kube: api.Kube, ref: SessionRef, keep: set[str]) -> None:
    """Delete access RoleBindings (then Roles) in namespaces no longer in the session's rules."""
    selector = f"{SESSION_UID}={ref.uid},{COMPONENT}=access"
    found = await api.call(kube.rbac.list_role_binding_for_all_namespaces, label_selector=selector)
    namespaces = {b["metadata"]["namespace"] for b in found["items"]}
    stale = sorted(namespaces - keep)
    await asyncio.gather(
        *[
            api.ignore_missing(kube.rbac.delete_namespaced_role_binding, ref.base_name, ns)
            for ns in stale
        ]
    )
    await asyncio.gather(
        *[api.ignore_missing(kube.rbac.delete_namespaced_role, ref.base_name, ns) for ns in stale]
    )


@dataclasses.dataclass(frozen=True)
class Token:
    token: str
    expires_at: datetime.datetime


async def mint(
    kube: api.Kube,
    ref: SessionRef,
    secret_uid: str,
    seconds: int,
    *,
    audiences: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> Token:
    """Mint a token for the session's ServiceAccount, bound to its Secret, and store it there.

    The apiserver may shorten the lifetime (``--service-account-max-token-expiration``), so the
    expiry is read from the response, never assumed. ``audiences`` (gateway mode: the gateway's
    audience only) make the apiserver itself refuse the token; ``extra`` keys are stored in the
    Secret beside it (gateway mode: ``server`` and ``ca.crt`` of the gateway).
    """
    spec: dict[str, Any] = {
        "expirationSeconds": max(seconds, MIN_TOKEN_SECONDS),
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": ref.secret,
            "uid": secret_uid,
        },
    }
    if audiences:
        spec["audiences"] = list(audiences)
    review = await api.call(
        kube.core.create_namespaced_service_account_token,
        ref.service_account,
        ref.namespace,
        {"spec": spec},
    )
    token = Token(
        str(review["status"]["token"]),
        datetime.datetime.fromisoformat(review["status"]["expirationTimestamp"]),
    )
    data = {
        "token": _b64(token.token),
        "namespace": _b64(ref.namespace),
        "expiresAt": _b64(token.expires_at.isoformat()),
        **{key: _b64(value) for key, value in (extra or {}).items()},
    }
    await api.call(kube.core.patch_namespaced_secret, ref.secret, ref.namespace, {"data": data})
    return token


async def issue(
    kube: api.Kube,
    ref: SessionRef,
    rules: Sequence[grant.PolicyRule],
    requester: base.UserInfo,
    seconds: int,
    *,
    audiences: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
    on_bound: OnBound | None = None,
) -> Token:
    """A brand-new session's credentials, with the calls overlapped as far as they can be
    (``audiences`` and ``extra`` as for ``mint``: gateway mode; ``on_bound`` as for
    :func:`ensure_bindings`: the controller confirms each binding there, the floor passes none).

    Identity and every Role at once (the own-reads Role too, as :func:`ensure_own_reads` makes
    it with no requests yet); then every binding while the token is minted (there is nothing to
    prune yet). Bindings need their Roles; the token needs the ServiceAccount and the Secret's
    uid. So the longest path is two rounds of writes plus the token's two calls, not a Role, then
    its binding, after the first round. The session controller and the benchmark's floor
    (``bench/sessions.py``) both call this, so the floor makes exactly the operator's calls in
    the operator's order.
    """
    secret_uid, namespaces, _ = await asyncio.gather(
        ensure_identity(kube, ref),
        ensure_roles(kube, ref, rules),
        _apply_role(kube, ref.namespace, _own_role(ref, [])),
    )
    _, _, token = await asyncio.gather(
        ensure_bindings(kube, ref, namespaces, requester, on_bound=on_bound),
        _apply_binding(kube, ref.namespace, _own_binding(ref)),
        mint(kube, ref, secret_uid, seconds, audiences=audiences, extra=extra),
    )
    return token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def revoke(kube: api.Kube, ref: SessionRef) -> None:
    """Take every credential of the session away, in the order that makes it effective soonest."""
    selector = f"{SESSION_UID}={ref.uid}"
    bindings = await api.call(
        kube.rbac.list_role_binding_for_all_namespaces, label_selector=selector
    )
    await asyncio.gather(
        *[
            api.ignore_missing(
                kube.rbac.delete_namespaced_role_binding,
                b["metadata"]["name"],
                b["metadata"]["namespace"],
            )
            for b in bindings["items"]
        ]
    )
    await api.ignore_missing(kube.core.delete_namespaced_secret, ref.secret, ref.namespace)
    await api.ignore_missing(
        kube.core.delete_namespaced_service_account, ref.service_account, ref.namespace
    )
    roles = await api.call(kube.rbac.list_role_for_all_namespaces, label_selector=selector)
    await asyncio.gather(
        *[
            api.ignore_missing(
                kube.rbac.delete_namespaced_role, r["metadata"]["name"], r["metadata"]["namespace"]
            )
            for r in roles["items"]
        ]
    )


async def leftovers(kube: api.Kube) -> Mapping[str, list[tuple[str, str, str]]]:
    """Every session-owned object in the cluster, by session uid: (kind, namespace, name)."""
    selector = SESSION_UID
    found: dict[str, list[tuple[str, str, str]]] = {}
    bindings, accounts, roles = await asyncio.gather(
        api.call(kube.rbac.list_role_binding_for_all_namespaces, label_selector=selector),
        api.call(kube.core.list_service_account_for_all_namespaces, label_selector=selector),
        api.call(kube.rbac.list_role_for_all_namespaces, label_selector=selector),
    )
    # The operator never reads Secrets cluster-wide (its ceiling): a session's Secret lives in
    # the session's namespace, beside its ServiceAccount and its requester's reader Role.
    namespaces = sorted(
        {a["metadata"]["namespace"] for a in accounts["items"]}
        | {
            r["metadata"]["namespace"]
            for r in roles["items"]
            if (r["metadata"].get("labels") or {}).get(COMPONENT) == "requester"
        }
    )
    secret_listings = await asyncio.gather(
        *[_session_secrets(kube, ns, selector) for ns in namespaces]
    )
    secrets = {"items": [item for listing in secret_listings for item in listing]}
    listings = (bindings, secrets, accounts, roles)
    for kind, listing in zip(
        ("RoleBinding", "Secret", "ServiceAccount", "Role"), listings, strict=True
    ):
        for item in listing["items"]:
            meta = item["metadata"]
            found.setdefault(meta["labels"][SESSION_UID], []).append(
                (kind, meta["namespace"], meta["name"])
            )
    return found


async def _session_secrets(kube: api.Kube, namespace: str, selector: str) -> list[api.Json]:
    """Session Secrets in ``namespace``; none where the operator may not list Secrets (where it
    could not have created any either)."""
    try:
        found = await api.call(kube.core.list_namespaced_secret, namespace, label_selector=selector)
    except errors.Forbidden:
        return []
    items: list[api.Json] = found["items"]
    return items


async def delete_leftovers(kube: api.Kube, objects: Sequence[tuple[str, str, str]]) -> None:
    """Delete objects in revocation order: RoleBindings, Secrets, ServiceAccounts, Roles."""
    deleters = {
        "RoleBinding": kube.rbac.delete_namespaced_role_binding,
        "Secret": kube.core.delete_namespaced_secret,
        "ServiceAccount": kube.core.delete_namespaced_service_account,
        "Role": kube.rbac.delete_namespaced_role,
    }
    for kind in ("RoleBinding", "Secret", "ServiceAccount", "Role"):
        await asyncio.gather(
            *[
                api.ignore_missing(deleters[kind], name, namespace)
                for k, namespace, name in objects
                if k == kind
            ]
        )
