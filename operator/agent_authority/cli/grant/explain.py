"""``grant explain FILE|-``: what a grant lets an agent do, in plain English.

Owns the sentences (:func:`describe`) and the command, which still explains a grant the operator
would refuse, listing the problems at the end (exit 1).
"""

from __future__ import annotations

import argparse

from agent_authority import models
from agent_authority.cli import render
from agent_authority.cli.grant import authority, checking, loading
from agent_authority.models import grant
from agent_authority.policy import approvals, blast, incidents


def describe(name: str, spec: grant.AgentGrantSpec) -> list[tuple[str, list[str]]]:
    """What a grant lets an agent do, as titled sections of plain sentences."""
    return [
        ("Who", [_who(spec)]),
        ("Incidents", [_incidents(spec)]),
        ("Reads", _reads(spec)),
        ("Remediations", _remediations(spec)),
        ("Approvals", [_approvals(name, spec)]),
        ("Sessions", [_sessions(spec)]),
    ]


def _who(spec: grant.AgentGrantSpec) -> str:
    people = [
        f"members of Group {s.name}"
        if s.kind is grant.SubjectKind.GROUP
        else authority.subject_label(s)
        for s in spec.subjects
    ]
    return (
        f"{render.human_list(people)} may open incident sessions under this grant, each with a "
        "token of its own that dies with the session."
    )


def _incidents(spec: grant.AgentGrantSpec) -> str:
    severities = render.human_list([str(s) for s in spec.incidents.severities])
    classes = spec.incidents.classes
    which = f"of class {render.human_list(classes, 'or')}" if classes else "of any class"
    alerts = spec.incidents.alertmanager
    if alerts is not None:  # alert-bound: the alert decides the incident (policy.incidents)
        return (
            f"Incidents of severity {severities}, {which}, only for {incidents.describe(alerts)}."
        )
    return f"Incidents of severity {severities}, {which}."


def _reads(spec: grant.AgentGrantSpec) -> list[str]:
    if not spec.read:
        return ["None: sessions get no read access; the agent can only ask for remediations."]
    sentences = []
    for scope in spec.read:
        groups = list(dict.fromkeys(group or "core" for group in scope.api_groups))
        noun = "API group" if len(groups) == 1 else "API groups"
        in_groups = "" if groups == ["core"] else f" ({noun} {render.human_list(groups)})"
        verbs = ", ".join(sorted({str(v) for v in scope.verbs}))
        rule = f"{verbs} {', '.join(scope.resources)}{in_groups}"
        resolved = (
            " (the operator resolves the selector from namespace labels when a session opens)"
            if scope.namespace_selector is not None
            else ""
        )
        where = authority.where(authority.scope_namespaces(scope))
        sentences.append(f"Scope '{scope.name}': {rule} in {where}{resolved}.")
    secrets = [s.name for s in spec.read if any(r.startswith("secrets") for r in s.resources)]
    watch = [s.name for s in spec.read if grant.ReadVerb.WATCH in s.verbs]
    sentences.append(
        f"Secrets are readable in scope {render.human_list(secrets)}."
        if secrets
        else "No secrets are readable."
    )
    sentences.append(
        f"Watch is granted in scope {render.human_list(watch)}: a watch opened before a session "
        "is revoked keeps streaming until it closes."
        if watch
        else "No watch: every read stops the moment a session is revoked."
    )
    return sentences


def _limits(limits: grant.RemediationLimits, bound: str, conjunction: str) -> str:
    """``changes replicas by at most 2 and affects at most 20 pods`` (``bound``: ``at most``)."""
    parts = []
    if limits.max_replicas_delta is not None:
        parts.append(f"changes replicas by {bound} {limits.max_replicas_delta}")
    if limits.max_pods_affected is not None:
        parts.append(f"affects {bound} {render.plural(limits.max_pods_affected, 'pod')}")
    return render.human_list(parts, conjunction, empty="")


def _remediation(spec: grant.AgentGrantSpec, entry: grant.RemediationPolicy) -> str:
    action = entry.action
    if entry.autonomy is grant.Autonomy.NEVER:
        return f"{action}: never; a request is denied and counts as a deviation."
    if action in blast.NODE_ACTIONS:
        where = "on any node"
    else:
        where = f"in {authority.where(entry.namespaces or authority.read_namespaces(spec))}"
    risk = blast.risk_class(action)
    wait = f"waits for {authority.approvers(approvals.required_approvals(spec.approval, risk))}"
    within = _limits(entry.limits, "at most", "and")
    if entry.autonomy is grant.Autonomy.PROPOSE:
        beyond = _limits(entry.limits, "more than", "or")
        how = f"every request {wait}"
        how += f", and one that {beyond} is refused" if beyond else ""
    elif not blast.is_reversible(action):
        how = f"every request {wait}: autonomy auto does not apply to an irreversible action"
    elif action in authority.NO_PODS:
        how = "applied without a human (it affects no pods)"
    elif within:
        how = f"applied without a human if it {within}; otherwise it {wait}"
    else:
        how = "applied without a human, whatever its size (no limits)"
    narrowed = []
    if entry.severities is not None:
        narrowed.append(f"severity {render.human_list([str(s) for s in entry.severities], 'or')}")
    if entry.classes is not None:
        narrowed.append(f"class {render.human_list(entry.classes, 'or')}")
    only = f" Only for incidents of {' and '.join(narrowed)}." if narrowed else ""
    evidence = "Evidence required." if entry.require_evidence else "No evidence required."
    return f"{action} {where}: {how} ({risk}).{only} {evidence}"


def _remediations(spec: grant.AgentGrantSpec) -> list[str]:
    if not spec.remediations:
        return ["None: the agent may investigate only; any action it asks for is denied."]
    return [
        *(_remediation(spec, entry) for entry in spec.remediations),
        "The operator applies what is allowed; the agent never holds write access. Any other "
        "action is denied and counts as a deviation.",
    ]


def _approvals(name: str, spec: grant.AgentGrantSpec) -> str:
    counts = spec.approval.required_approvals
    return (
        f"Anyone RBAC allows the verb 'approve' on agentgrants.{models.GROUP} '{name}' may "
        "approve, never the requester, a session identity or the operator. Reversible actions "
        f"need {authority.approvers(counts.reversible)}, irreversible ones "
        f"{authority.approvers(counts.irreversible)}; a request not approved within "
        f"{render.duration(spec.approval.timeout_seconds)} expires."
    )


def _sessions(spec: grant.AgentGrantSpec) -> str:
    policy = spec.session
    depth = policy.max_sub_agent_depth
    nesting = (
        "no sub-agent sessions"
        if depth == 0
        else f"sub-agents nest up to {depth} deep, each no wider than its parent"
    )
    revoking = render.plural(policy.max_denied_requests + 1, "denied request")
    denied = (
        "the first denied request revokes a session"
        if policy.max_denied_requests == 0
        else f"a session is revoked after {revoking}"
    )
    return (
        f"At most {policy.max_concurrent_sessions} at a time, each for at most "
        f"{render.duration(policy.max_ttl_seconds)}; {nesting}; {denied}."
    )


def run(args: argparse.Namespace) -> int:
    """``grant explain FILE``: describe each grant; 1 if one has problems the operator refuses."""
    try:
        grants = checking.load_grants(loading.read_source(args.file))
    except loading.InputError as e:
        return render.usage_error(str(e))
    if not grants:
        return render.usage_error(
            f"no {checking.KIND} in {args.file} (allowed: a file with {checking.KIND} YAML)"
        )
    markdown = render.Format(args.output) is render.Format.MARKDOWN
    blocks = []
    refused = False
    for name, checked in grants.items():
        assert checked.model is not None  # checking.load_grants refuses grants the schema refuses
        sections = describe(name, checked.model.spec)
        problems = [f"{f.field}: {f.message}" for f in checked.errors]
        if problems:
            refused = True
            sections.append(("Refused by the operator", problems))
        title = f"{checking.KIND} {name} ({checked.document.source.label})"
        blocks.append(
            render.sections_markdown(title, sections)
            if markdown
            else render.sections_text(title, sections)
        )
    print("\n".join(blocks), end="")
    return render.EXIT_FINDINGS if refused else render.EXIT_OK
