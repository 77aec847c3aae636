"""RemediationRequest admission: who may ask for a change, and who may approve one.

- mutating CREATE: ``spec.requester`` is the authenticated caller (client values are ignored);
- validating CREATE: a request is created with the session token of ``spec.sessionRef`` — the
  caller's own, active session — so every request belongs to one session and one incident.
  People may create only rollbacks (``spec.rollbackOf``), which then go through approval too;
- mutating UPDATE of ``status``: an appended approval gets the caller's identity and the time;
- validating UPDATE of ``status``: anyone but the operator may only append exactly one approval
  or denial, must hold the custom verb ``approve`` on the request's grant
  (``agentgrants.agentauthority.io``, resourceName = the grant; a SubjectAccessReview), and may
  not be the requester, the operator, or an identity acting for the request's session or any of
  its ancestor sessions (their requesters and ServiceAccounts, walked up ``spec.parentSession``
  and bounded by the grant's ``session.maxSubAgentDepth``; an ancestor that cannot be read refuses
  the approval); each approver counts once. The session and its grant come from the operator's
  watched copies (``indexes.sessions_by_name``, ``indexes.grants_by_name``), so an approval they
  allow costs one round trip, the SubjectAccessReview, which is always made; a refusal is given
  only after the same decision on fresh reads (a copy may lag by a watch round trip), and the
  executor re-decides every approval on fresh reads before it applies anything.

The mutating webhooks run before schema validation, so they read the object as sent: a field of
the wrong type is left for the schema to refuse by name, never dereferenced here, and an empty or
malformed ``spec.sessionRef.name`` is never used to read a session (an empty name would read the
whole collection).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import re
from typing import Any

import kopf
import pydantic

from agent_authority import indexes
from agent_authority.kube import access, api, lineage, resources
from agent_authority.models import FINALIZER, GROUP, VERSION, base, grant, request
from agent_authority.policy import approvals, invalid
from agent_authority.webhooks import identity, refusals

PLURAL = "remediationrequests"
SA_PREFIX = "system:serviceaccount:"
SESSION_UID_LABEL = "agentauthority.io/session-uid"


_NAME = re.compile(base.DNS_SUBDOMAIN)


def session_name(spec: Any) -> str | None:
    """``spec.sessionRef.name`` when it is a well-formed object name, else ``None``."""
    ref = spec.get("sessionRef") if isinstance(spec, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    if isinstance(name, str) and 0 < len(name) <= 253 and _NAME.match(name):
        return name
    return None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


@kopf.on.mutate(GROUP, VERSION, PLURAL, operation="CREATE", id="stamp-request", persistent=True)
async def stamp(
    spec: kopf.Spec,
    meta: kopf.Meta,
    namespace: str | None,
    userinfo: Any,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    meta_finalizers = meta.get("finalizers")
    patch.spec["requester"] = identity.from_userinfo(userinfo).to_api()
    # kopf's finalizer, which it keeps while a request is undecided or applying (its daemon
    # and timer): written here once rather than by kopf right after the evaluation.
    finalizers = list(meta_finalizers) if isinstance(meta_finalizers, list) else []
    if FINALIZER not in finalizers:
        patch.metadata["finalizers"] = [*finalizers, FINALIZER]
    name = session_name(dict(spec or {}))
    if name is None or not namespace:
        return  # the schema refuses a missing or malformed sessionRef, naming the field
    session_body = await resources.get_session(api.default(), namespace, name)
    if session_body is not None:  # the audit trail correlates records by the session's uid
        patch.metadata.labels[SESSION_UID_LABEL] = session_body["metadata"]["uid"]


@kopf.on.validate(GROUP, VERSION, PLURAL, operation="CREATE", id="own-session", persistent=True)
@refusals.counted("RemediationRequest")
async def own_session(spec: kopf.Spec, namespace: str | None, userinfo: Any, **_: Any) -> None:
    try:  # the schema admits a few values nothing can parse (observedAt: []): refuse them here
        request.RemediationRequestSpec.model_validate(dict(spec or {}))
    except pydantic.ValidationError as e:
        raise kopf.AdmissionError(
            f"{invalid.describe_invalid(e)} (the operator could not act on this request)",
            code=422,
        ) from e
    caller = identity.from_userinfo(userinfo).username
    ns = namespace or ""
    name = session_name(dict(spec or {}))
    if name is None:
        raise kopf.AdmissionError(
            "spec.sessionRef.name: required, the name of the caller's own active session",
            code=400,
        )
    session_body = await resources.get_session(api.default(), ns, name)
    status = (session_body or {}).get("status") or {}
    own = status.get("serviceAccountName")
    if own and caller == f"{SA_PREFIX}{ns}:{own}":
        if status.get("phase") != "Active":
            raise kopf.AdmissionError(
                f"spec.sessionRef: session {name!r} is {status.get('phase')}, not Active; an "
                "ended session cannot ask for changes",
                code=403,
            )
        return
    if caller.startswith(f"{SA_PREFIX}{ns}:aa-") or session_body is None:
        raise kopf.AdmissionError(
            f"spec.sessionRef: {name!r} is not the caller's own active session ({caller}); a "
            "request must be created with the token of the session it names",
            code=403,
        )
    if not spec.get("rollbackOf"):
        raise kopf.AdmissionError(
            f"{caller} is not the identity of session {name!r}: agents ask for changes with "
            "their session token; people may create only rollbacks (spec.rollbackOf, see "
            "`agent-authority rollback`)",
            code=403,
        )


def _appended(old: Any, new: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    before = list(((old or {}).get("status") or {}).get("approvals") or [])
    after = list(((new or {}).get("status") or {}).get("approvals") or [])
    return before, after


@kopf.on.mutate(
    GROUP,
    VERSION,
    PLURAL,
    operation="UPDATE",
    subresource="status",
    id="stamp-approver",
    persistent=True,
)
def stamp_approver(
    userinfo: Any, memo: Any, patch: kopf.Patch, old: Any = None, new: Any = None, **_: Any
) -> None:
    if identity.is_operator(userinfo, memo):
        return
    before, after = _appended(old, new)
    if len(after) != len(before) + 1:
        return  # not a single append: the validating webhook refuses it
    entry = dict(after[-1])
    entry["approver"] = identity.from_userinfo(userinfo).to_api()
    entry["time"] = _now()
    patch.status["approvals"] = [*after[:-1], entry]


def _refuse(message: str) -> kopf.AdmissionError:
    return kopf.AdmissionError(message, code=403)


@kopf.on.validate(
    GROUP,
    VERSION,
    PLURAL,
    operation="UPDATE",
    subresource="status",
    id="guard-approvals",
    persistent=True,
)
@refusals.counted("RemediationRequest")
async def guard_approvals(
    userinfo: Any,
    memo: Any,
    namespace: str | None,
    old: Any = None,
    new: Any = None,
    sessions_by_name: Any = None,
    grants_by_name: Any = None,
    **_: Any,
) -> None:
    if identity.is_operator(userinfo, memo):
        return
    caller = identity.from_userinfo(userinfo)
    old_status = dict((old or {}).get("status") or {})
    new_status = dict((new or {}).get("status") or {})
    before, after = _appended(old, new)
    keys = (set(old_status) | set(new_status)) - {"approvals"}
    others_changed = any(old_status.get(k) != new_status.get(k) for k in keys)
    if others_changed or len(after) != len(before) + 1 or after[: len(before)] != before:
        raise _refuse(
            "status is written by the operator; others may only append exactly one entry to "
            "status.approvals (use `agent-authority approve|deny`)"
        )
    entry = request.Approval.model_validate(after[-1])
    if entry.approver is None or entry.approver.username != caller.username:
        raise _refuse("status.approvals[]: the approver must be the authenticated caller")
    spec = dict((new or {}).get("spec") or {})
    ns = namespace or ""
    name = session_name(spec)
    check = _Check(caller, userinfo, memo, ns, spec, entry, before, old_status)
    # The watched copies of the session and its grant: an approval they allow needs one round
    # trip (the SubjectAccessReview, always made); a refusal is given only on fresh reads. The
    # copy is used only when it is the session the request was created under (its uid, stamped
    # at creation) and was activated (it names its ServiceAccount); else it is read fresh.
    watched = indexes.session(sessions_by_name, ns, name) if name else None
    stamped = (((new or {}).get("metadata") or {}).get("labels") or {}).get(SESSION_UID_LABEL)
    if (
        watched is not None
        and stamped
        and watched["metadata"].get("uid") == stamped
        and (watched.get("status") or {}).get("serviceAccountName")
    ):
        grant_name = str(((watched.get("spec") or {}).get("grantRef") or {}).get("name") or "")
        watched_grant = indexes.grant(grants_by_name, grant_name)
        if watched_grant is not None and await check.refusal(watched, watched_grant) is None:
            return
    kube = api.default()
    session_body = await resources.get_session(kube, ns, name) if name else None
    if session_body is None:
        raise _refuse(f"spec.sessionRef: session {name!r} not found")
    refusal = await check.refusal(session_body, None)
    if refusal is not None:
        raise _refuse(refusal)


@dataclasses.dataclass(frozen=True)
class _Check:
    """One approval to decide: who appends what to which request."""

    caller: base.UserInfo
    userinfo: Any
    memo: Any
    namespace: str
    spec: dict[str, Any]
    entry: request.Approval
    before: list[dict[str, Any]]
    old_status: dict[str, Any]

    async def refusal(self, session_body: api.Json, grant_body: api.Json | None) -> str | None:
        """Why the approval is refused under ``session_body`` and ``grant_body`` (``None``: the
        grant is read fresh, beside the review); ``None`` when it is allowed. The caller's RBAC
        verb is always reviewed fresh."""
        kube = api.default()
        grant_name = str(session_body["spec"]["grantRef"]["name"])
        review = access.allowed(
            kube,
            self.caller,
            verb="approve",
            group=GROUP,
            resource="agentgrants",
            name=grant_name,
            extra=identity.extra_of(self.userinfo),
        )
        if grant_body is None:
            # The review and the grant read are independent: one round trip instead of two.
            allowed, grant_body = await asyncio.gather(
                review, resources.get_grant(kube, grant_name)
            )
        else:
            allowed = await review
        name = session_body["metadata"]["name"]
        if not allowed:
            return (
                f"{self.caller.username} may not approve or deny requests under grant "
                f"{grant_name!r}: RBAC verb 'approve' on agentgrants.{GROUP} with resourceName "
                f"{grant_name!r} is required"
            )
        if grant_body is None:
            return f"grant {grant_name!r} of session {name!r} no longer exists"
        depth = grant.AgentGrantSpec.model_validate(grant_body["spec"]).session.max_sub_agent_depth
        ns = self.namespace
        try:
            chain = await lineage.chain(kube, ns, session_body, depth)
        except lineage.LineageError as e:
            return f"spec.sessionRef: {e}; the request cannot be decided"
        # The request's session and every ancestor (lineage), and the caller when it is any
        # session ServiceAccount of the namespace (approvals.session_identities, shared with the
        # page).
        session_identities = set(approvals.lineage_identities(lineage.identities(ns, chain)))
        session_identities |= approvals.session_identities(ns, None, None, self.caller.username)
        requester = self.spec.get("requester")
        refusal = approvals.check_new_approval(
            self.entry,
            [request.Approval.model_validate(a) for a in self.before],
            base.UserInfo.model_validate(requester) if requester else None,
            session_identities,
            getattr(getattr(self.memo, "operator", None), "username", ""),
            already_decided=self.old_status.get("phase")
            not in (None, "Pending", "AwaitingApproval"),
            phase=str(self.old_status.get("phase") or "") or None,
        )
        return f"{refusal.reason.value}: {refusal.message}" if refusal is not None else None
