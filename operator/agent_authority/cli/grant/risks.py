"""What a valid grant allows that deserves a second look: the warnings of ``grant lint``.

Each warning names the field, the risk, and what would be allowed without a warning. What the
apiserver or the operator refuses is ``checking``'s, not this module's.
"""

from __future__ import annotations

from agent_authority.cli import render
from agent_authority.cli.grant import authority, documents
from agent_authority.models import grant
from agent_authority.policy import approvals, blast, incidents


def warnings(spec: grant.AgentGrantSpec) -> list[documents.Finding]:
    """What a grant allows that deserves a second look; each one names how to avoid it."""
    found: list[documents.Finding] = []

    def warn(field: str, message: str) -> None:
        found.append(documents.Finding(documents.Level.WARNING, field, message))

    for i, scope in enumerate(spec.read):
        where = authority.where(authority.scope_namespaces(scope))
        if scope.namespace_selector is not None and not authority.selector_text(
            scope.namespace_selector
        ):
            warn(
                f"spec.read[{i}].namespaceSelector",
                f"scope '{scope.name}' has an empty selector, which matches every namespace, "
                "kube-system and namespaces created later included (allowed without warning: "
                "matchLabels or matchExpressions, or a list of namespaces)",
            )
        if len(set(scope.api_groups)) > 1:
            warn(
                f"spec.read[{i}].apiGroups",
                f"scope '{scope.name}' lists several API groups, and RBAC grants each of its "
                "resources in each of them, so it also grants combinations nobody wrote down "
                "(allowed without warning: one scope per API group, with that group's resources)",
            )
        for j, resource in enumerate(scope.resources):
            if resource.partition("/")[0] == "secrets":
                warn(
                    f"spec.read[{i}].resources[{j}]",
                    f"scope '{scope.name}' reads secrets in {where}: every credential stored "
                    "there becomes readable with the session token (allowed without warning: "
                    "leave secrets out; configmaps, events and logs rarely hold credentials)",
                )
        for j, verb in enumerate(scope.verbs):
            if verb is grant.ReadVerb.WATCH:
                warn(
                    f"spec.read[{i}].verbs[{j}]",
                    f"scope '{scope.name}' grants watch: a watch opened before the session is "
                    "revoked keeps streaming until it closes, so revocation does not cut it off "
                    "at once (allowed without warning: get, list)",
                )
    read_namespaces = authority.read_namespaces(spec)
    has_selector = any(scope.namespace_selector is not None for scope in spec.read)
    for i, entry in enumerate(spec.remediations):
        path = f"spec.remediations[{i}]"
        if entry.autonomy is grant.Autonomy.AUTO and not blast.is_reversible(entry.action):
            required = approvals.required_approvals(spec.approval, blast.RiskClass.IRREVERSIBLE)
            warn(
                f"{path}.autonomy",
                f"autonomy auto has no effect on {entry.action}: it is irreversible, so every "
                f"request waits for {authority.approvers(required)} anyway (allowed without "
                "warning: autonomy propose, which says what happens)",
            )
        elif (
            entry.autonomy is grant.Autonomy.AUTO
            and entry.action not in authority.NO_PODS
            and entry.limits.max_replicas_delta is None
            and entry.limits.max_pods_affected is None
        ):
            warn(
                f"{path}.limits",
                f"autonomy auto without limits: every {entry.action} request is applied without "
                "a human, whatever its size (allowed without warning: limits.maxReplicasDelta or "
                "limits.maxPodsAffected, beyond which a human approves)",
            )
        if entry.action in blast.NODE_ACTIONS or has_selector:
            continue  # node actions ignore namespaces; selector scopes resolve on the cluster
        for j, namespace in enumerate(entry.namespaces):
            if namespace not in read_namespaces:
                warn(
                    f"{path}.namespaces[{j}]",
                    f"{entry.action} may act in namespace '{namespace}', which no read scope "
                    "covers: the agent would change what it cannot investigate (allowed without "
                    f"warning: namespaces read scopes cover: {render.human_list(read_namespaces)})",
                )
    found += _alert_warnings(spec.incidents.alertmanager)
    if spec.session.max_denied_requests > 0:
        tolerated = render.plural(spec.session.max_denied_requests, "denied request")
        warn(
            "spec.session.maxDeniedRequests",
            f"a session survives {tolerated} before it is revoked, and each one is an agent "
            "reaching outside its scope (allowed without warning: 0, the first denial revokes)",
        )
    return found


LOOPBACK = ("http://127.0.0.1", "http://localhost", "http://[::1]")


def _alert_warnings(binding: grant.AlertBinding | None) -> list[documents.Finding]:
    """An alert-bound grant trusts Alertmanager's answer: say when that trust is thin."""
    if binding is None:
        return []
    found = []
    field = "spec.incidents.alertmanager"
    if binding.url.startswith("http://") and not binding.url.startswith(LOOPBACK):
        found.append(
            documents.Finding(
                documents.Level.WARNING,
                f"{field}.url",
                f"Alertmanager is asked over plain HTTP ({binding.url}): whoever is on the path "
                "can answer that an alert fires and decide the incident's severity (allowed "
                "without warning: an https:// URL)",
            )
        )
    if not binding.matchers:
        found.append(
            documents.Finding(
                documents.Level.WARNING,
                f"{field}.matchers",
                "no matchers: any firing alert opens a session under this grant (allowed "
                "without warning: matchers naming the alerts this agent works on, e.g. "
                + incidents.matcher_text(grant.AlertMatcher(name="team", value="shop"))
                + ")",
            )
        )
    return found
