"""Whether a session's new credentials are usable yet: "Active means usable".

Creating a RoleBinding returns before the apiserver's RBAC authorizer serves it (RBAC is read from
informers), so a session whose status said ``Active`` right after its credentials were written
could still get 403 on its first read, and so could the requester reading the token Secret. This
module asks the apiserver's authorizer itself, with SubjectAccessReviews (they go through the same
authorizer and its cache as a real request): one representative rule per RoleBinding of the
session's ServiceAccount, and the requester's ``get`` on the token Secret. It retries briefly and
fails closed: :class:`NotYetUsable` if the authorizer does not agree in time, so the caller leaves
the session ``Pending`` and tries again.

:class:`Confirmation` asks each RoleBinding's review as soon as that binding is written
(``credentials.issue(on_bound=...)``), while the other bindings and the token are still being
made, instead of after all of them; :meth:`Confirmation.rest` then asks whatever was not asked
yet, so no check is ever skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

from agent_authority.kube import access, api, errors, session_access, session_refs
from agent_authority.models import base, grant

TIMEOUT = 15.0
"""Seconds to wait for the authorizer to serve new RoleBindings (it usually takes milliseconds)."""
FIRST_DELAY = 0.02
MAX_DELAY = 0.5


class NotYetUsable(errors.Unavailable):
    """The authorizer does not (yet) allow what the session's credentials were written to allow.

    An :class:`~agent_authority.kube.errors.Unavailable`, so handlers retry it like any other
    transient apiserver condition."""


@dataclasses.dataclass(frozen=True)
class Check:
    """One SubjectAccessReview: ``user`` may ``verb`` the resource in ``namespace``."""

    user: base.UserInfo
    verb: str
    group: str
    resource: str
    namespace: str
    subresource: str = ""
    name: str = ""
    binding: tuple[str, str] = ("", "")
    """(namespace, name) of the RoleBinding this check confirms."""

    def describe(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        target = f"{what} {self.name!r}" if self.name else what
        return f"{self.user.username} {self.verb} {target} in {self.namespace}"


def service_account_user(ref: session_refs.SessionRef) -> base.UserInfo:
    """The identity the apiserver gives the session's token (a ServiceAccount and its groups)."""
    return base.UserInfo(
        username=ref.username,
        groups=[
            "system:serviceaccounts",
            f"system:serviceaccounts:{ref.namespace}",
            "system:authenticated",
        ],
    )


def checks(
    ref: session_refs.SessionRef, rules: Sequence[grant.PolicyRule], requester: base.UserInfo
) -> list[Check]:
    """One representative rule per RoleBinding the session gets, and the requester's Secret read.

    Mirrors :func:`session_access.ensure_roles`: one Role (and RoleBinding) per namespace of the
    rules; and the own Role, whose first rule is the agent's right to ask for remediations."""
    sa = service_account_user(ref)
    by_ns = session_access.rules_by_namespace(rules)
    out = []
    for namespace, ns_rules in by_ns.items():
        rule = ns_rules[0]
        resource, _, subresource = str(rule["resources"][0]).partition("/")
        names = rule.get("resourceNames") or [""]
        out.append(
            Check(
                sa,
                verb=str(rule["verbs"][0]),
                group=str(rule["apiGroups"][0]),
                resource=resource,
                subresource=subresource,
                namespace=namespace,
                name=str(names[0]),
                binding=(namespace, ref.base_name),
            )
        )
    own = session_access.agent_rules()[0]
    out.append(
        Check(
            sa,
            verb=str(own["verbs"][0]),
            group=str(own["apiGroups"][0]),
            resource=str(own["resources"][0]),
            namespace=ref.namespace,
            binding=(ref.namespace, session_access.own_name(ref)),
        )
    )
    out.append(
        Check(
            requester,
            "get",
            "",
            "secrets",
            ref.namespace,
            name=ref.secret,
            binding=(ref.namespace, session_access.reader_name(ref)),
        ),
    )
    return out


async def _allowed(kube: api.Kube, check: Check) -> bool:
    return await access.allowed(
        kube,
        check.user,
        verb=check.verb,
        group=check.group,
        resource=check.resource,
        subresource=check.subresource,
        namespace=check.namespace,
        name=check.name,
    )


async def confirm_usable(
    kube: api.Kube,
    ref: session_refs.SessionRef,
    rules: Sequence[grant.PolicyRule],
    requester: base.UserInfo,
    *,
    within: float = TIMEOUT,
) -> int:
    """Return once the authorizer allows every :func:`checks` entry; how many rounds it took.

    Checks that passed are not asked again. Raises :class:`NotYetUsable` (naming what is still
    refused) after ``within`` seconds."""
    return await confirm(kube, checks(ref, rules, requester), within=within)


async def confirm(kube: api.Kube, pending: Sequence[Check], *, within: float = TIMEOUT) -> int:
    """Return once the authorizer allows every check in ``pending``; how many rounds it took
    (0 for none). Raises :class:`NotYetUsable` after ``within`` seconds."""
    pending = list(pending)
    deadline = time.monotonic() + within
    delay = FIRST_DELAY
    rounds = 0
    while pending:
        rounds += 1
        results = await asyncio.gather(*[_allowed(kube, c) for c in pending])
        pending = [c for c, ok in zip(pending, results, strict=True) if not ok]
        if not pending:
            return rounds
        if time.monotonic() + delay > deadline:
            refused = "; ".join(c.describe() for c in pending)
            raise NotYetUsable(
                f"credentials written but not yet authorized after {within:.0f} s: {refused}"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
    return rounds


class Confirmation:
    """The :func:`checks` of one new session, confirmed binding by binding as each is written.

    Pass :meth:`bound` as ``credentials.issue(on_bound=...)``; after ``issue`` returns, await
    :meth:`rest`, which confirms every check not confirmed yet (a binding that was not reported,
    or one written by a retry). Active is written only after both: fail closed."""

    def __init__(
        self,
        kube: api.Kube,
        ref: session_refs.SessionRef,
        rules: Sequence[grant.PolicyRule],
        requester: base.UserInfo,
        *,
        within: float = TIMEOUT,
    ) -> None:
        self._kube = kube
        self._within = within
        self._pending: dict[tuple[str, str], list[Check]] = {}
        for check in checks(ref, rules, requester):
            self._pending.setdefault(check.binding, []).append(check)

    async def bound(self, namespace: str, name: str) -> None:
        """The RoleBinding ``namespace/name`` was written: confirm its checks now."""
        due = self._pending.pop((namespace, name), [])
        if due:
            await confirm(self._kube, due, within=self._within)

    async def rest(self) -> None:
        """Confirm every check not confirmed by :meth:`bound`."""
        due = [c for group in self._pending.values() for c in group]
        self._pending.clear()
        await confirm(self._kube, due, within=self._within)
