"""A session's credentials as a whole: issued at once, revoked in order, swept at start-up.

The parts are in :mod:`session_refs` (names and labels), :mod:`tokens` (ServiceAccount, Secret,
token) and :mod:`session_access` (Roles and RoleBindings); this module puts them together.
Revocation order is the point of it: RoleBindings first (authorization is gone within
milliseconds: RBAC is served from informers), then the bound Secret and the ServiceAccount (the
token stops authenticating once the apiserver's 10 s token cache forgets it), then the Roles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from agent_authority.kube import api, errors, session_access, session_refs, tokens
from agent_authority.models import base, grant


async def issue(
    kube: api.Kube,
    ref: session_refs.SessionRef,
    rules: Sequence[grant.PolicyRule],
    requester: base.UserInfo,
    seconds: int,
    *,
    audiences: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
    on_bound: session_access.OnBound | None = None,
) -> tokens.Token:
    """A brand-new session's credentials, with the calls overlapped as far as they can be
    (``audiences`` and ``extra`` as for ``mint``: gateway mode; ``on_bound`` as for
    :func:`ensure_bindings`: the controller confirms each binding there, the floor passes none).

    Identity and every Role at once (the own Role too, as :func:`ensure_own_reads` makes
    it with no requests yet); then every binding while the token is minted (there is nothing to
    prune yet). Bindings need their Roles; the token needs the ServiceAccount and the Secret's
    uid. So the longest path is two rounds of writes plus the token's two calls, not a Role, then
    its binding, after the first round. The session controller and the benchmark's floor
    (``bench/sessions.py``) both call this, so the floor makes exactly the operator's calls in
    the operator's order.
    """
    secret_uid, namespaces, _ = await asyncio.gather(
        tokens.ensure_identity(kube, ref),
        session_access.ensure_roles(kube, ref, rules),
        session_access.apply_role(kube, ref.namespace, session_access.own_role(ref, [])),
    )
    _, _, token = await asyncio.gather(
        session_access.ensure_bindings(kube, ref, namespaces, requester, on_bound=on_bound),
        session_access.apply_binding(kube, ref.namespace, session_access.own_binding(ref)),
        tokens.mint(kube, ref, secret_uid, seconds, audiences=audiences, extra=extra),
    )
    return token


async def revoke(kube: api.Kube, ref: session_refs.SessionRef) -> None:
    """Take every credential of the session away, in the order that makes it effective soonest."""
    selector = f"{session_refs.SESSION_UID}={ref.uid}"
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
    selector = session_refs.SESSION_UID
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
            if (r["metadata"].get("labels") or {}).get(session_refs.COMPONENT) == "requester"
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
            found.setdefault(meta["labels"][session_refs.SESSION_UID], []).append(
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
