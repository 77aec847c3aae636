"""ValidatingAdmissionPolicies: the rules that hold while the operator (and its webhooks) do not.

The operator's webhooks are down when it is (stopped, mid-upgrade, before its first start, or
after someone deleted their configurations). These policies are evaluated by the apiserver itself
(CEL, ``admissionregistration.k8s.io/v1``) and are installed with the CRDs, so the rules below
hold without the operator:

- ``spec.requester`` is the caller (username and groups) when a session or a request is created;
- IncidentSession ``status`` is written by the operator's identity only;
- RemediationRequest ``status`` is written by the operator only, except that anyone (RBAC still
  decides who) may append exactly one approval whose stamped approver is themselves;
- an IncidentSession's ``spec`` changes only by ``ended`` becoming true, for everyone;
- its finalizer and its ``agentauthority.io/*`` annotations (kopf's progress and diff base)
  change only by the operator;
- session identities (``system:serviceaccount:<ns>:aa-*``) may create RemediationRequests and
  nothing else among our kinds;
- the operator's identity may create or change no webhook configuration but ``agentauthority.io``,
  and no webhook in it may reach beyond the ``agentauthority.io`` API group (RBAC cannot restrict
  ``create`` by name, so this is the other half of the operator's ceiling).

The operator's identity is a parameter: a ConfigMap (:data:`PARAMS_NAME` in the operator's
namespace) whose ``operatorUsername`` is the operator's username, referenced by every binding with
``parameterNotFoundAction: Deny`` (no parameter: every guarded write is refused, fail closed).
A Helm chart renders the same ConfigMap from its values.

Field lists come from the models, so a status or spec field added later is covered by
regenerating (``hack/gen-crds`` writes ``config/policies/``, and its check fails on drift).
Pure: dicts in, dicts out.
"""

from __future__ import annotations

from typing import Any

import pydantic

from agent_authority.models import FINALIZER, GROUP, base, request, session

API_VERSION = "admissionregistration.k8s.io/v1"
PARAMS_NAME = "agent-authority-admission"
PARAMS_KEY = "operatorUsername"
DEFAULT_PARAMS_NAMESPACE = "agent-authority"
ANNOTATION_PREFIX = f"{GROUP}/"
SESSION_IDENTITY = "^system:serviceaccount:[^:]+:aa-"
"""Usernames of session tokens (ServiceAccounts named ``aa-...``, see kube/session_refs.py)."""
FILE_NAME = "agentauthority.io_admission-policies.yaml"
WEBHOOK_CONFIGURATION = GROUP
"""The one Validating/MutatingWebhookConfiguration the operator manages (pre-created, empty)."""

SESSIONS = session.IncidentSession.plural
REQUESTS = request.RemediationRequest.plural
IS_OPERATOR = f"request.userInfo.username == params.data.{PARAMS_KEY}"


def _wire_fields(model: type[pydantic.BaseModel]) -> list[str]:
    """The camelCase wire names of a model's fields, in declaration order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _unchanged(path: str, field: str) -> str:
    new, old = f"object.{path}", f"oldObject.{path}"
    return (
        f"(has({new}.{field}) == has({old}.{field})) && "
        f"(!has({new}.{field}) || {new}.{field} == {old}.{field})"
    )


def _rule(
    expression: str, message_expression: str, reason: str = "Forbidden", message: str = ""
) -> dict[str, Any]:
    """A validation; ``message`` is the static fallback the apiserver uses if the message
    expression cannot be evaluated (default: the message expression's literal text)."""
    head = message_expression.split("' +", 1)[0].strip("'").replace("\\'", "'")
    static = message or head.rstrip(" (")
    return {
        "expression": expression,
        "message": static,
        "messageExpression": message_expression,
        "reason": reason,
    }


def _match(resources: list[str], operations: list[str]) -> dict[str, Any]:
    return {
        "resourceRules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": ["*"],
                "operations": operations,
                "resources": resources,
            }
        ]
    }


def _policy(
    name: str,
    match: dict[str, Any],
    validations: list[dict[str, Any]],
    *,
    variables: list[dict[str, str]] | None = None,
    match_conditions: list[dict[str, str]] | None = None,
    params: bool = True,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"failurePolicy": "Fail", "matchConstraints": match}
    if params:
        spec["paramKind"] = {"apiVersion": "v1", "kind": "ConfigMap"}
    if match_conditions:
        spec["matchConditions"] = match_conditions
    if variables:
        spec["variables"] = variables
    spec["validations"] = validations
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "agent-authority"}},
        "spec": spec,
    }


MISSING_PARAMS_ALLOWED = frozenset({f"{GROUP}-operator-webhook-configurations"})
"""Policies that must not block everyone else when the parameter is missing (they guard
resources other products write too)."""


def _binding(policy: dict[str, Any], params_namespace: str) -> dict[str, Any]:
    name = policy["metadata"]["name"]
    spec: dict[str, Any] = {"policyName": name, "validationActions": ["Deny"]}
    if "paramKind" in policy["spec"]:
        spec["paramRef"] = {
            "name": PARAMS_NAME,
            "namespace": params_namespace,
            "parameterNotFoundAction": "Allow" if name in MISSING_PARAMS_ALLOWED else "Deny",
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy["metadata"]["name"], "labels": policy["metadata"]["labels"]},
        "spec": spec,
    }


def requester_is_the_caller() -> dict[str, Any]:
    requester = "object.spec.requester"
    groups = f"(has({requester}.groups) ? {requester}.groups : [])"
    caller = "(has(request.userInfo.groups) ? request.userInfo.groups : [])"
    return _policy(
        f"{GROUP}-requester-is-the-caller",
        _match([SESSIONS, REQUESTS], ["CREATE"]),
        [
            _rule(
                f"has({requester}) && {requester}.username == request.userInfo.username",
                "'spec.requester.username must be the authenticated caller ' + "
                "request.userInfo.username + ' (it is stamped by admission; client values are "
                "refused while the webhooks are not there to overwrite them)'",
            ),
            _rule(
                f"!has({requester}) || ({groups}.all(g, g in {caller}) && "
                f"{caller}.all(g, g in {groups}))",
                "'spec.requester.groups must be exactly the caller\\'s groups'",
            ),
        ],
        params=False,
    )


def session_status_by_the_operator() -> dict[str, Any]:
    return _policy(
        f"{GROUP}-session-status-by-the-operator",
        _match([f"{SESSIONS}/status"], ["UPDATE"]),
        [
            _rule(
                f"{IS_OPERATOR} || (has(object.status) == has(oldObject.status) && "
                "(!has(object.status) || object.status == oldObject.status))",
                "'IncidentSession status is written by the operator (' + "
                f"params.data.{PARAMS_KEY} + ') only; ' + request.userInfo.username + "
                "' may not change it'",
            )
        ],
    )


def request_status_by_the_operator() -> dict[str, Any]:
    others = [f for f in _wire_fields(request.RemediationRequestStatus) if f != "approvals"]
    unchanged = " && ".join(f"({_unchanged('status', f)})" for f in others)
    old, new = "variables.oldApprovals", "variables.newApprovals"
    return _policy(
        f"{GROUP}-request-status-by-the-operator",
        _match([f"{REQUESTS}/status"], ["UPDATE"]),
        [
            _rule(
                f"{IS_OPERATOR} || (has(object.status) && has(oldObject.status) && {unchanged})",
                "'RemediationRequest status is written by the operator only; others may only "
                "append one approval (status.approvals), not change status.' + "
                "' (caller: ' + request.userInfo.username + ')'",
            ),
            _rule(
                f"{IS_OPERATOR} || (size({new}) == size({old}) + 1 && {old}.all(a, a in {new}))",
                "'status.approvals: append exactly one approval and keep every earlier one'",
            ),
            _rule(
                f"{IS_OPERATOR} || {new}.filter(a, !(a in {old})).all(a, has(a.approver) && "
                "a.approver.username == request.userInfo.username)",
                "'status.approvals: the appended approval must name its caller ' + "
                "request.userInfo.username + ' as approver.username'",
            ),
        ],
        variables=[
            {
                "name": "oldApprovals",
                "expression": "has(oldObject.status) && has(oldObject.status.approvals) ? "
                "oldObject.status.approvals : []",
            },
            {
                "name": "newApprovals",
                "expression": "has(object.status) && has(object.status.approvals) ? "
                "object.status.approvals : []",
            },
        ],
    )


def session_spec_only_ends() -> dict[str, Any]:
    others = [f for f in _wire_fields(session.IncidentSessionSpec) if f != "ended"]
    changed = ", ".join(f"({_unchanged('spec', f)}) ? '' : 'spec.{f}'" for f in others)
    was_ended = "(has(oldObject.spec.ended) && oldObject.spec.ended)"
    is_ended = "(has(object.spec.ended) && object.spec.ended)"
    return _policy(
        f"{GROUP}-session-spec-only-ends",
        _match([SESSIONS], ["UPDATE"]),
        [
            _rule(
                "size(variables.changedSpec) == 0",
                "variables.changedSpec.join(', ') + ': IncidentSession spec is immutable except "
                "spec.ended: false -> true (refused for ' + request.userInfo.username + ')'",
                "Invalid",
                message="IncidentSession spec is immutable except spec.ended: false -> true",
            ),
            _rule(
                f"!{was_ended} || {is_ended}",
                "'spec.ended cannot go back: an ended session stays ended'",
                "Invalid",
            ),
        ],
        variables=[
            {
                "name": "changedSpec",
                "expression": f"[{changed}].filter(f, f != '')",
            }
        ],
        params=False,
    )


def session_metadata_by_the_operator() -> dict[str, Any]:
    new, old = "variables.newAnnotations", "variables.oldAnnotations"
    prefix = ANNOTATION_PREFIX
    return _policy(
        f"{GROUP}-session-metadata-by-the-operator",
        _match([SESSIONS], ["UPDATE"]),
        [
            _rule(
                f"{IS_OPERATOR} || ('{FINALIZER}' in variables.newFinalizers) == "
                f"('{FINALIZER}' in variables.oldFinalizers)",
                f"'the finalizer {FINALIZER} is added and removed by the operator only'",
            ),
            _rule(
                f"{IS_OPERATOR} || size(variables.changedAnnotations) == 0",
                "'metadata.annotations[' + variables.changedAnnotations.join(', ') + ']: "
                f"annotations {prefix}* (the operator\\'s progress and diff base) are written "
                "by the operator only'",
                message=f"annotations {prefix}* (the operator's progress and diff base) are "
                "written by the operator only",
            ),
        ],
        variables=[
            {
                "name": "newFinalizers",
                "expression": "has(object.metadata.finalizers) ? object.metadata.finalizers : []",
            },
            {
                "name": "oldFinalizers",
                "expression": "has(oldObject.metadata.finalizers) ? "
                "oldObject.metadata.finalizers : []",
            },
            {
                "name": "newAnnotations",
                "expression": "has(object.metadata.annotations) ? object.metadata.annotations : {}",
            },
            {
                "name": "oldAnnotations",
                "expression": "has(oldObject.metadata.annotations) ? "
                "oldObject.metadata.annotations : {}",
            },
            {
                "name": "changedAnnotations",
                "expression": f"{new}.filter(k, k.startsWith('{prefix}') && "
                f"!(k in {old} && {old}[k] == {new}[k])) + {old}.filter(k, "
                f"k.startsWith('{prefix}') && !(k in {new}))",
            },
        ],
    )


def session_identities_only_request() -> dict[str, Any]:
    everything = ["agentgrants", SESSIONS, REQUESTS, "*/status"]
    return _policy(
        f"{GROUP}-session-identities-only-request",
        _match(everything, ["CREATE", "UPDATE", "DELETE"]),
        [
            _rule(
                f"request.operation == 'CREATE' && request.resource.resource == '{REQUESTS}' && "
                "variables.subresource == ''",
                f"'SessionIdentity: session identities may create RemediationRequests and "
                "nothing else among "
                f"{GROUP} kinds; refused: ' + request.operation + ' ' + "
                "request.resource.resource + (variables.subresource != '' ? "
                "'/' + variables.subresource : '') + ' by ' + request.userInfo.username",
            )
        ],
        variables=[
            {
                "name": "subresource",
                "expression": "has(request.subResource) ? request.subResource : ''",
            }
        ],
        match_conditions=[
            {
                "name": "session-identity",
                "expression": f"request.userInfo.username.matches('{SESSION_IDENTITY}')",
            }
        ],
        params=False,
    )


def operator_webhook_configurations() -> dict[str, Any]:
    ours = (
        f"object.metadata.name == '{WEBHOOK_CONFIGURATION}' && (!has(object.webhooks) || "
        "object.webhooks.all(w, !has(w.rules) || w.rules.all(r, has(r.apiGroups) && "
        f"r.apiGroups.all(g, g == '{GROUP}'))))"
    )
    return _policy(
        f"{GROUP}-operator-webhook-configurations",
        {
            "resourceRules": [
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [
                        "validatingwebhookconfigurations",
                        "mutatingwebhookconfigurations",
                    ],
                }
            ]
        },
        [
            _rule(
                f"!({IS_OPERATOR}) || ({ours})",
                f"'the operator may only manage the webhook configuration {WEBHOOK_CONFIGURATION}"
                f", with webhooks for the {GROUP} API group only; refused: ' + "
                "request.resource.resource + ' ' + object.metadata.name",
            )
        ],
    )


def policies() -> list[dict[str, Any]]:
    return [
        operator_webhook_configurations(),
        requester_is_the_caller(),
        session_status_by_the_operator(),
        request_status_by_the_operator(),
        session_spec_only_ends(),
        session_metadata_by_the_operator(),
        session_identities_only_request(),
    ]


def documents(params_namespace: str = DEFAULT_PARAMS_NAMESPACE) -> list[dict[str, Any]]:
    """Every policy followed by its binding (the bindings read their parameter from
    ``params_namespace``)."""
    out: list[dict[str, Any]] = []
    for policy in policies():
        out += [policy, _binding(policy, params_namespace)]
    return out


def webhook_configurations() -> list[dict[str, Any]]:
    """The installer pre-creates the (empty) configurations the operator then only patches."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {
                "name": WEBHOOK_CONFIGURATION,
                "labels": {"app.kubernetes.io/name": "agent-authority"},
            },
        }
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    ]


def params(operator_username: str, namespace: str = DEFAULT_PARAMS_NAMESPACE) -> dict[str, Any]:
    """The ConfigMap naming the operator's identity (installation-specific, not generated)."""
    base.UserInfo(username=operator_username)  # validates the name's length
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": PARAMS_NAME, "namespace": namespace},
        "data": {PARAMS_KEY: operator_username},
    }
