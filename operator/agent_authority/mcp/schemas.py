"""The MCP tools' JSON schemas and descriptions, narrowed to the caller's current session.

:func:`definitions` lists only the tools ``policy.tools`` offers for the session's effective
rules, and the read tools' ``namespace``/``resource`` arguments enumerate exactly what the
session can read, so an LLM is shown what it may do and nothing else. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from agent_authority.models import GROUP, grant, request
from agent_authority.policy import tools as tool_policy

MAX_TAIL_LINES = 5000
MAX_LOG_BYTES = 1 << 20
Json = dict[str, Any]

SESSION_ARG = {
    "type": "string",
    "description": "Session name (default: the session opened last with open_session).",
}


def _obj(properties: Json, required: list[str] | None = None) -> Json:
    schema: Json = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _scopes_schema() -> Json:
    return {
        "type": "array",
        "description": "Grant read scopes to use, by name, optionally narrowed to namespaces "
        "(default: every scope of the grant).",
        "items": _obj(
            {
                "name": {"type": "string"},
                "namespaces": {"type": "array", "items": {"type": "string"}},
            },
            ["name"],
        ),
    }


def _readables(rules: list[grant.PolicyRule] | None) -> list[tool_policy.Readable]:
    return [
        r
        for r in tool_policy.readable(rules or [])
        if "/" not in r.resource and r.api_group != GROUP
    ]


def definitions(rules: list[grant.PolicyRule] | None) -> list[Json]:
    """Name, description and input schema of every tool the session's rules allow."""
    readable = _readables(rules)
    namespaces = sorted({ns for r in readable for ns in r.namespaces})
    ns_arg: Json = {"type": "string", "description": "Namespace."}
    if namespaces:
        ns_arg["enum"] = namespaces
    resources = sorted({r.resource for r in readable})
    res_arg: Json = {
        "type": "string",
        "description": "Resource, plural and lower case (e.g. pods, deployments).",
    }
    if resources:
        res_arg["enum"] = resources
    group_arg = {
        "type": "string",
        "description": "API group ('' for core; default: the group this session reads it in).",
    }
    all_tools: dict[str, tuple[str, Json]] = {
        "open_session": (
            "Open an incident session under an AgentGrant before doing anything else: the "
            "operator checks the grant and mints a short-lived, read-only credential for the "
            "incident. For an alert-bound grant, incident_id is the Alertmanager alert's "
            "fingerprint and severity/class come from the alert (leave them out). Afterwards the "
            "tool list changes to what the session may do.",
            _obj(
                {
                    "grant": {"type": "string", "description": "AgentGrant name."},
                    "incident_id": {
                        "type": "string",
                        "description": "Incident id or alert fingerprint.",
                    },
                    "purpose": {"type": "string", "description": "What you will investigate."},
                    "severity": {"type": "string", "enum": [s.value for s in grant.Severity]},
                    "incident_class": {"type": "string", "description": "e.g. latency, crashloop."},
                    "title": {"type": "string"},
                    "scopes": _scopes_schema(),
                    "ttl_seconds": {"type": "integer", "minimum": 10, "maximum": 86400},
                    "name": {"type": "string", "description": "Session name (default: generated)."},
                },
                ["grant", "incident_id", "purpose"],
            ),
        ),
        "session_status": (
            "Phase, expiry and effective read rules of a session (and why it ended, if it did).",
            _obj({"session": SESSION_ARG}),
        ),
        "can_i": (
            "Check whether the session may do something, without sending it to the cluster. "
            "Ask before a read you are unsure of: a forbidden request can revoke the session.",
            _obj(
                {
                    "verb": {"type": "string", "enum": ["get", "list", "watch"]},
                    "resource": {
                        "type": "string",
                        "description": "e.g. pods, deployments, pods/log.",
                    },
                    "namespace": {"type": "string"},
                    "api_group": group_arg,
                    "session": SESSION_ARG,
                },
                ["verb", "resource", "namespace"],
            ),
        ),
        "list_resources": (
            "List objects of one resource in one namespace the session may read (names, labels "
            "and a short status), optionally filtered by a label selector.",
            _obj(
                {
                    "resource": res_arg,
                    "namespace": ns_arg,
                    "api_group": group_arg,
                    "label_selector": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                    "session": SESSION_ARG,
                },
                ["resource", "namespace"],
            ),
        ),
        "get_resource": (
            "Get one object (JSON, without managedFields) the session may read.",
            _obj(
                {
                    "resource": res_arg,
                    "name": {"type": "string"},
                    "namespace": ns_arg,
                    "api_group": group_arg,
                    "session": SESSION_ARG,
                },
                ["resource", "name", "namespace"],
            ),
        ),
        "pod_logs": (
            "The last lines of a pod's log, bounded: at most tail_lines lines and max_bytes "
            "bytes, optionally only the last since_seconds.",
            _obj(
                {
                    "pod": {"type": "string"},
                    "namespace": ns_arg,
                    "container": {"type": "string"},
                    "tail_lines": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_TAIL_LINES,
                        "default": 200,
                    },
                    "max_bytes": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LOG_BYTES,
                        "default": 65536,
                    },
                    "since_seconds": {"type": "integer", "minimum": 1},
                    "session": SESSION_ARG,
                },
                ["pod", "namespace"],
            ),
        ),
        "events": (
            "Recent Kubernetes Events in a namespace, optionally only those about one object.",
            _obj(
                {
                    "namespace": ns_arg,
                    "involved_object": {
                        "type": "string",
                        "description": "Object name to filter by.",
                    },
                    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    "session": SESSION_ARG,
                },
                ["namespace"],
            ),
        ),
        "propose_remediation": (
            "Ask the operator to make a change (you never change the cluster yourself). Give the "
            "action, its target, a hypothesis and evidence excerpts; the server computes their "
            "sha256 digests and observation times. Returns the policy decision, the dry-run diff, "
            "the blast radius and what happens next (applied, waiting for a human, or denied). "
            "Only propose targets in your grant's scope: an out-of-scope request revokes the "
            "session.",
            _obj(
                {
                    "action": {"type": "string", "enum": [a.value for a in grant.ActionType]},
                    "target": _obj(
                        {
                            "kind": {
                                "type": "string",
                                "enum": [k.value for k in request.TargetKind],
                            },
                            "namespace": {"type": "string"},
                            "name": {"type": "string"},
                        },
                        ["kind", "name"],
                    ),
                    "params": _obj(
                        {
                            "replicas": {"type": "integer", "minimum": 0},
                            "to_revision": {"type": "integer", "minimum": 1},
                            "suspend": {"type": "boolean"},
                        }
                    ),
                    "hypothesis": {"type": "string"},
                    "evidence": {
                        "type": "array",
                        "maxItems": 32,
                        "items": _obj(
                            {
                                "kind": {
                                    "type": "string",
                                    "enum": [k.value for k in request.EvidenceKind],
                                },
                                "source": {"type": "string", "description": "Where it came from."},
                                "excerpt": {"type": "string", "description": "The evidence text."},
                            },
                            ["kind", "source", "excerpt"],
                        ),
                    },
                    "name": {"type": "string", "description": "Request name (default: generated)."},
                    "session": SESSION_ARG,
                },
                ["action", "target", "hypothesis"],
            ),
        ),
        "remediation_status": (
            "Phase, decision, diff, blast radius and approvals of a RemediationRequest.",
            _obj({"name": {"type": "string"}, "session": SESSION_ARG}, ["name"]),
        ),
        "wait_for_remediation": (
            "Wait until a RemediationRequest is decided and done (Succeeded, Failed, Denied, "
            "Expired, Cancelled, RolledBack) or timeout_seconds pass; returns its status.",
            _obj(
                {
                    "name": {"type": "string"},
                    "timeout_seconds": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1800,
                        "default": 300,
                    },
                    "session": SESSION_ARG,
                },
                ["name"],
            ),
        ),
        "open_sub_session": (
            "Open a sub-agent session for the same incident with narrower scopes (it can never "
            "widen the parent's and ends with it). Pass its name as `session` to act in it.",
            _obj(
                {
                    "purpose": {"type": "string"},
                    "scopes": _scopes_schema(),
                    "ttl_seconds": {"type": "integer", "minimum": 10, "maximum": 86400},
                    "name": {"type": "string"},
                    "session": {**SESSION_ARG, "description": "Parent session (default: current)."},
                },
                ["purpose"],
            ),
        ),
        "end_session": (
            "End a session when the work is done: its credential is revoked at once.",
            _obj({"session": SESSION_ARG}),
        ),
    }
    offered = tool_policy.offered(rules)
    return [
        {"name": name, "description": all_tools[name][0], "input_schema": all_tools[name][1]}
        for name in offered
    ]
