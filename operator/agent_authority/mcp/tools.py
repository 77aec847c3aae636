"""What each MCP tool call does (schemas and descriptions: :mod:`schemas`).

:func:`call` runs one call. A call outside the session's rules is refused here, before any
request reaches the apiserver, so it is never a denied request (a deviation). Every refusal or
failure is a :class:`agent.ToolError` with the operator's reason; the server turns it into a
tool error.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from agent_authority.kube import agentapi, errors
from agent_authority.mcp import agent, schemas
from agent_authority.models import GROUP, VERSION, grant, request
from agent_authority.policy import tools as tool_policy
from agent_authority.policy import wording

MAX_TAIL_LINES = schemas.MAX_TAIL_LINES
MAX_LOG_BYTES = schemas.MAX_LOG_BYTES
MAX_EXCERPT = 4096
DECISION_WAIT = 15.0
FINAL_PHASES = {"Denied", "Succeeded", "Failed", "Expired", "Cancelled", "RolledBack"}
Json = dict[str, Any]

# -- helpers --------------------------------------------------------------------------------


def _group_for(rules: list[grant.PolicyRule], resource: str, given: str | None) -> str:
    if given is not None:
        return given
    groups = sorted({g for r in rules if resource in r.resources for g in r.api_groups})
    return groups[0] if groups else ""


def _check(
    rules: list[grant.PolicyRule],
    verb: str,
    api_group: str,
    resource: str,
    namespace: str,
    name: str | None = None,
) -> None:
    refused = tool_policy.refusal(
        rules, verb=verb, api_group=api_group, resource=resource, namespace=namespace, name=name
    )
    if refused:
        raise agent.ToolError(refused)


async def _kube(call: Awaitable[Any], what: str) -> Any:
    try:
        return await call
    except errors.KubeError as e:
        kind = agent.Rejected if e.status in (401, 403) else agent.ToolError
        raise kind(f"{what} failed: {agent.refusal_of(e)}") from e


def _summary(item: Json) -> Json:
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    out: Json = {"name": meta.get("name"), "created": meta.get("creationTimestamp")}
    if meta.get("labels"):
        out["labels"] = meta["labels"]
    for key in ("phase", "replicas", "readyReplicas", "availableReplicas", "conditions"):
        if key in status and key != "conditions":
            out[key] = status[key]
    if isinstance(status.get("containerStatuses"), list):
        out["restarts"] = sum(int(c.get("restartCount", 0)) for c in status["containerStatuses"])
    return out


def _session_view(handle: agent.Handle) -> Json:
    status = handle.status
    spec = handle.body.get("spec") or {}
    view: Json = {
        "session": handle.name,
        "namespace": handle.namespace,
        "phase": handle.phase,
        "grant": (spec.get("grantRef") or {}).get("name"),
        "incident": spec.get("incident"),
        "expiresAt": status.get("expiresAt"),
        "rules": [wording.describe_rule(r) for r in handle.rules],
    }
    if status.get("revocation"):
        view["ended"] = status["revocation"]
    if spec.get("parentSession"):
        view["parent"] = spec["parentSession"]
    return view


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _next_step(phase: str, name: str, namespace: str) -> str:
    return {
        "Pending": "the operator is evaluating it; call wait_for_remediation",
        "AwaitingApproval": (
            f"a human approver must approve it (agent-authority approve {name} -n {namespace}); "
            "call wait_for_remediation to learn the outcome"
        ),
        "Approved": "approved; the operator will apply it: call wait_for_remediation",
        "Applying": "the operator is applying it: call wait_for_remediation",
        "Succeeded": "applied by the operator; verify the effect with reads",
        "Denied": "denied: do not retry the same request; see reason",
        "Failed": "the operator could not apply it; see reason",
        "Expired": "nobody approved it in time",
        "Cancelled": "cancelled because its session ended",
        "RolledBack": "applied and then rolled back",
    }.get(phase, "see phase and reason")


def _request_view(body: Json) -> Json:
    status = body.get("status") or {}
    meta = body["metadata"]
    phase = str(status.get("phase") or "Pending")
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "phase": phase,
        "decision": status.get("reason"),
        "requiredApprovals": status.get("requiredApprovals"),
        "approvals": len(status.get("approvals") or []),
        "blastRadius": status.get("blastRadius"),
        "diff": status.get("diff") or [],
        "next": _next_step(phase, meta["name"], meta["namespace"]),
    }


# -- the tools ------------------------------------------------------------------------------


async def _open_session(a: agent.Agent, args: Json) -> Json:
    incident: Json = {"id": str(args["incident_id"])}
    if args.get("severity"):
        incident["severity"] = args["severity"]
    if args.get("incident_class"):
        incident["class"] = args["incident_class"]
    if args.get("title"):
        incident["title"] = args["title"]
    handle = await a.open(
        grant_name=str(args["grant"]),
        incident=incident,
        purpose=str(args["purpose"]),
        scopes=args.get("scopes"),
        ttl_seconds=args.get("ttl_seconds"),
        name=args.get("name"),
    )
    return {**_session_view(handle), "tools": tool_policy.offered(handle.rules)}


async def _session_status(a: agent.Agent, args: Json) -> Json:
    return _session_view(await a.refreshed(args.get("session"), force=True))


async def _can_i(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    rules = handle.rules
    resource = str(args["resource"])
    group = _group_for(rules, resource, args.get("api_group"))
    refused = tool_policy.refusal(
        rules,
        verb=str(args["verb"]),
        api_group=group,
        resource=resource,
        namespace=str(args["namespace"]),
    )
    return {"allowed": refused is None, "reason": refused or "inside the session's rules"}


async def _list_resources(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    resource, namespace = str(args["resource"]), str(args["namespace"])
    group = _group_for(handle.rules, resource, args.get("api_group"))
    _check(handle.rules, "list", group, resource, namespace)
    found = await _kube(
        agentapi.list_objects(
            handle.client,
            group,
            resource,
            namespace,
            label_selector=args.get("label_selector"),
            limit=int(args.get("limit") or 100),
        ),
        f"list {resource}",
    )
    items = found.get("items") or []
    return {
        "resource": resource,
        "namespace": namespace,
        "count": len(items),
        "items": [_summary(i) for i in items],
    }


async def _get_resource(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    resource, namespace, name = str(args["resource"]), str(args["namespace"]), str(args["name"])
    group = _group_for(handle.rules, resource, args.get("api_group"))
    _check(handle.rules, "get", group, resource, namespace, name)
    found: Json = await _kube(
        agentapi.get(handle.client, group, resource, namespace, name), f"get {resource}/{name}"
    )
    (found.get("metadata") or {}).pop("managedFields", None)
    return found


async def _pod_logs(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    namespace, pod = str(args["namespace"]), str(args["pod"])
    _check(handle.rules, "get", "", "pods/log", namespace, pod)
    tail = min(int(args.get("tail_lines") or 200), MAX_TAIL_LINES)
    cap = min(int(args.get("max_bytes") or 65536), MAX_LOG_BYTES)
    data = await _kube(
        agentapi.pod_logs(
            handle.client,
            namespace,
            pod,
            container=args.get("container"),
            tail_lines=tail,
            limit_bytes=cap,
            since_seconds=args.get("since_seconds"),
        ),
        f"logs of pod {pod}",
    )
    return {
        "pod": pod,
        "namespace": namespace,
        "bytes": len(data),
        "truncated": len(data) >= cap,
        "log": data.decode(errors="replace"),
    }


async def _events(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    namespace = str(args["namespace"])
    core = tool_policy.allows(
        handle.rules, verb="list", api_group="", resource="events", namespace=namespace
    )
    group = "" if core else "events.k8s.io"
    _check(handle.rules, "list", group, "events", namespace)
    involved = args.get("involved_object")
    selector = None
    if involved:
        selector = f"involvedObject.name={involved}" if core else f"regarding.name={involved}"
    found = await _kube(
        agentapi.list_objects(
            handle.client,
            group,
            "events",
            namespace,
            field_selector=selector,
            limit=int(args.get("limit") or 50),
        ),
        "list events",
    )
    out = []
    for e in found.get("items") or []:
        about = e.get("involvedObject") or e.get("regarding") or {}
        out.append(
            {
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": e.get("message") or e.get("note"),
                "object": f"{about.get('kind')}/{about.get('name')}",
                "count": e.get("count") or (e.get("series") or {}).get("count"),
                "last": e.get("lastTimestamp") or e.get("eventTime"),
            }
        )
    return {"namespace": namespace, "events": out}


def evidence_items(raw: list[Json], observed_at: str) -> list[Json]:
    """Evidence as the CRD wants it: digest of the full text, excerpt capped, time stamped."""
    items = []
    for e in raw:
        text = str(e.get("excerpt", ""))
        items.append(
            {
                "kind": e["kind"],
                "source": str(e["source"]),
                "excerpt": text[:MAX_EXCERPT],
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "observedAt": observed_at,
            }
        )
    return items


def request_body(session_name: str, args: Json, observed_at: str | None = None) -> Json:
    """The RemediationRequest ``propose_remediation`` creates from its arguments (validated)."""
    params = {
        {"to_revision": "toRevision"}.get(k, k): v for k, v in (args.get("params") or {}).items()
    }
    action: Json = {"type": args["action"], "target": dict(args["target"])}
    if params:
        action["params"] = params
    name = args.get("name") or f"{session_name[:40]}-{uuid.uuid4().hex[:5]}"
    body: Json = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RemediationRequest",
        "metadata": {"name": name},
        "spec": {
            "sessionRef": {"name": session_name},
            "action": action,
            "hypothesis": str(args["hypothesis"]),
            "evidence": evidence_items(list(args.get("evidence") or []), observed_at or _now()),
        },
    }
    try:
        request.RemediationRequestSpec.model_validate(body["spec"])
    except ValueError as e:
        raise agent.ToolError(f"the request is not valid: {e}") from e
    return body


async def submit(api_client: Any, namespace: str, body: Json) -> Json:
    """Create the request with the session token and wait (bounded) for the policy decision.

    The same calls an agent would make with kubectl: one create, then reads until the phase
    leaves ``Pending``. ``bench/mcp.py`` times this directly as the floor of the tool.
    """
    created: Json = await _kube(
        agentapi.create_request(api_client, namespace, body), "creating the request"
    )
    name = body["metadata"]["name"]
    deadline = time.monotonic() + DECISION_WAIT
    while (created.get("status") or {}).get("phase") in (None, "Pending") and (
        time.monotonic() < deadline
    ):
        await asyncio.sleep(0.02)
        created = await _kube(
            agentapi.get_request(api_client, namespace, name), "reading the request"
        )
    return created


async def _propose(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    body = request_body(handle.name, args)
    return _request_view(await submit(handle.client, handle.namespace, body))


async def _remediation_status(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    body = await _kube(
        agentapi.get_request(handle.client, handle.namespace, str(args["name"])),
        "reading the request",
    )
    return _request_view(body)


async def _wait_for_remediation(a: agent.Agent, args: Json) -> Json:
    handle = await a.active(args.get("session"))
    timeout = min(int(args.get("timeout_seconds") or 300), 1800)
    deadline = time.monotonic() + timeout
    while True:
        body = await _kube(
            agentapi.get_request(handle.client, handle.namespace, str(args["name"])),
            "reading the request",
        )
        view = _request_view(body)
        if view["phase"] in FINAL_PHASES or time.monotonic() > deadline:
            view["timedOut"] = view["phase"] not in FINAL_PHASES
            return view
        await asyncio.sleep(0.5)


async def _open_sub_session(a: agent.Agent, args: Json) -> Json:
    parent = await a.active(args.get("session"))
    spec = parent.body["spec"]
    handle = await a.open(
        grant_name=spec["grantRef"]["name"],
        incident=dict(spec["incident"]),
        purpose=str(args["purpose"]),
        scopes=args.get("scopes"),
        ttl_seconds=args.get("ttl_seconds"),
        parent=parent.name,
        name=args.get("name"),
    )
    return _session_view(handle)


async def _end_session(a: agent.Agent, args: Json) -> Json:
    return _session_view(await a.end(args.get("session")))


HANDLERS: dict[str, Callable[[agent.Agent, Json], Awaitable[Json]]] = {
    "open_session": _open_session,
    "session_status": _session_status,
    "can_i": _can_i,
    "list_resources": _list_resources,
    "get_resource": _get_resource,
    "pod_logs": _pod_logs,
    "events": _events,
    "propose_remediation": _propose,
    "remediation_status": _remediation_status,
    "wait_for_remediation": _wait_for_remediation,
    "open_sub_session": _open_sub_session,
    "end_session": _end_session,
}
CHANGES_TOOLS = {"open_session", "end_session"}


async def call(a: agent.Agent, name: str, args: Json) -> Json:
    """Run one tool call; a tool outside the current session's offer is refused here."""
    handler = HANDLERS.get(name)
    if handler is None:
        raise agent.ToolError(f"unknown tool '{name}' (tools: {', '.join(HANDLERS)})")
    if name not in tool_policy.offered(a.rules()) and not args.get("session"):
        raise agent.ToolError(
            f"tool '{name}' is not available: "
            + (
                "open a session first (open_session)"
                if a.rules() is None
                else "this session's rules do not allow it, so it was not sent to the cluster "
                f"(available: {', '.join(tool_policy.offered(a.rules()))})"
            )
        )
    try:
        return await handler(a, args)
    except KeyError as e:
        raise agent.ToolError(f"missing argument {e}") from e
    except agent.Rejected:
        if name in ("open_session", "open_sub_session", "end_session"):
            raise
        await a.active(args.get("session"), force=True)  # says so if the session has ended
        raise
