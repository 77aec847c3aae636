"""Approver commands: ``requests``, ``show``, ``approve``, ``deny``, ``rollback``.

Approvals are appended to ``status.approvals`` through the status subresource; the admission
webhook stamps who you are, checks that you hold the ``approve`` verb on the grant, and refuses
self-approval and duplicate approvers. Its refusal is printed as it came.

``show`` words a request by where it is: "What will change" before it is applied, "What changed"
after, "What would have changed" when it never was; it offers ``rollback`` only when the request
was applied, has a recorded inverse and the grant lets that inverse be requested. ``rollback``
waits briefly for the decision and exits 1 when the rollback is Denied or Failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

import pydantic

from agent_authority.cli import connection, durations, failures, help_text, printing
from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION, grant
from agent_authority.models import request as request_model
from agent_authority.policy import undo

PLURAL = "remediationrequests"
SETTLED = {"Denied", "Succeeded", "Failed", "Expired", "Cancelled", "RolledBack"}
APPLIED = {"Succeeded", "RolledBack"}
NEVER_APPLIED = {"Denied", "Expired", "Cancelled"}
UNSUCCESSFUL = {"Denied", "Failed", "Expired", "Cancelled"}


def add_parser(sub: Any) -> None:
    listing = sub.add_parser(
        "requests",
        help="list remediation requests (default: awaiting approval)",
        **help_text.examples(
            """
            agent-authority requests -n agents                 # awaiting approval
            agent-authority requests -A --all-phases           # every request, every namespace
            agent-authority requests -A --all-phases -o wide
            agent-authority requests -n agents -o name
            """
        ),
    )
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    listing.add_argument("--all-phases", action="store_true", help="not only AwaitingApproval")
    printing.add_output(listing)
    connection.add_options(listing)
    listing.set_defaults(func=list_)

    show = sub.add_parser(
        "show",
        help="everything an approver needs to decide on a request",
        **help_text.examples(
            """
            agent-authority show inc-4711-scale-checkout -n agents
            agent-authority show inc-4711-scale-checkout -n agents -o yaml
            """
        ),
    )
    show.add_argument("name")
    printing.add_output(show)
    connection.add_options(show)
    show.set_defaults(func=show_)

    for verb in ("approve", "deny"):
        cmd = sub.add_parser(
            verb,
            help=f"{verb} a remediation request (recorded with your identity)",
            **help_text.examples(
                f"""
                agent-authority {verb} inc-4711-restart-checkout -n agents --reason "looks right"
                """
            ),
        )
        cmd.add_argument("name")
        cmd.add_argument("--reason", required=True, help="why (recorded in status.approvals)")
        cmd.add_argument(
            "--timeout",
            type=durations.argument,
            default=30,
            help="wait this long for the outcome (default: 30s)",
        )
        connection.add_options(cmd)
        cmd.set_defaults(func=decide, decision=verb)

    rollback = sub.add_parser(
        "rollback",
        help="undo an applied request with its recorded inverse",
        **help_text.examples(
            """
            agent-authority rollback inc-4711-scale-checkout -n agents --reason "no better"
            """
        ),
    )
    rollback.add_argument("name")
    rollback.add_argument("--reason", required=True)
    rollback.add_argument(
        "--timeout",
        type=durations.argument,
        default=30,
        help="wait this long for the rollback's decision (default: 30s)",
    )
    connection.add_options(rollback)
    rollback.set_defaults(func=rollback_)


def _get(kube: api.Kube, namespace: str, name: str) -> api.Json:
    return api.sync(
        kube.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
    )


def target(spec: api.Json) -> str:
    """``Deployment/shop/checkout`` (``Node/worker-1`` for cluster-scoped targets)."""
    found = spec["action"]["target"]
    where = f"{found['namespace']}/" if found.get("namespace") else ""
    return f"{found['kind']}/{where}{found['name']}"


def params(action: api.Json) -> str:
    """``replicas=4`` (empty when there are none), never a Python dict."""
    given = action.get("params") or {}
    return " ".join(f"{key}={_word(value)}" for key, value in given.items())


def _word(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(unset)"
    return str(value)


def change(entry: api.Json) -> str:
    """``spec.replicas: 3 -> 4``; a field that was not set reads ``(unset)``."""
    before = entry.get("before")
    after = entry.get("after")
    return f"{entry['path']}: {_word(before)} -> {_word(after)}"


def approvals(status: api.Json) -> str:
    given = [a for a in status.get("approvals", []) if a.get("decision") == "approve"]
    required = status.get("requiredApprovals")
    return f"{len(given)}/{required}" if required else "-"


def _header(wide: bool) -> list[str]:
    header = ["NAMESPACE", "NAME", "ACTION", "TARGET", "PHASE", "APPROVALS"]
    return header + (["PODS", "DELTA", "EVIDENCE", "CHANGES", "REASON"] if wide else ["CHANGES"])


def _row(item: api.Json, wide: bool) -> list[str]:
    spec, status = item["spec"], item.get("status") or {}
    diff = status.get("diff") or []
    changes = "; ".join(change(c) for c in diff[:2]) + (
        f" (+{len(diff) - 2})" if len(diff) > 2 else ""
    )
    row = [
        item["metadata"]["namespace"],
        item["metadata"]["name"],
        spec["action"]["type"],
        target(spec),
        status.get("phase", "Pending"),
        approvals(status),
    ]
    if not wide:
        return [*row, changes or "-"]
    radius = status.get("blastRadius") or {}
    return [
        *row,
        str(radius.get("podsAffected", "-")),
        str(radius.get("replicasDelta", "-")),
        ",".join(sorted({e["kind"] for e in spec.get("evidence", [])})) or "none",
        changes or "-",
        str(status.get("reason") or "-"),
    ]


def list_(args: argparse.Namespace) -> int:
    items = [
        item
        for item in connection.list_objects(args, PLURAL)
        if args.all_phases or (item.get("status") or {}).get("phase") == "AwaitingApproval"
    ]
    what = "remediation requests" if args.all_phases else "remediation requests awaiting approval"
    hint = "" if args.all_phases else " (--all-phases lists every phase)"
    printing.emit_list(
        items,
        args.output,
        header=_header,
        row=_row,
        empty=f"No {what} found {connection.where(args)}{hint}.",
        kind="RemediationRequest",
    )
    return 0


def show_(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    item = _get(kube, namespace, args.name)
    if args.output in ("json", "yaml"):
        sys.stdout.write(printing.dump(item, args.output))
        return 0
    if args.output == "name":
        print(printing.object_name(item))
        return 0
    session = _session(kube, namespace, item)
    print(describe(item, session=session, grant_body=_grant(kube, session)))
    return 0


def _session(kube: api.Kube, namespace: str, item: api.Json) -> api.Json | None:
    try:
        return api.sync(
            kube.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "incidentsessions",
            item["spec"]["sessionRef"]["name"],
        )
    except errors.KubeError:
        return None


def _grant(kube: api.Kube, session: api.Json | None) -> api.Json | None:
    if session is None:
        return None
    try:
        return api.sync(
            kube.custom.get_cluster_custom_object,
            GROUP,
            VERSION,
            "agentgrants",
            session["spec"]["grantRef"]["name"],
        )
    except errors.KubeError:
        return None


def _changes_heading(phase: str) -> str:
    if phase in APPLIED:
        return "What changed:"
    if phase in NEVER_APPLIED:
        return "What would have changed (not applied):"
    if phase == "Failed":
        return "What was to change (the apply failed):"
    return "What will change (server-side dry-run):"


def undo_line(item: api.Json, grant_body: api.Json | None) -> str:
    """What undoing the request takes, offering ``rollback`` only when it can succeed."""
    meta, status = item["metadata"], item.get("status") or {}
    phase = status.get("phase", "Pending")
    inverse = status.get("inverse")
    reversible = (status.get("blastRadius") or {}).get("reversible")
    if phase in NEVER_APPLIED:
        return "nothing to undo: the request was not applied"
    if phase == "RolledBack":
        return "already rolled back"
    if phase != "Succeeded":
        if inverse:
            return f"once applied, by {inverse['action']['type']} {target(inverse)}"
        return "reversible once applied" if reversible else "not reversible (no inverse action)"
    if not inverse:
        return "not reversible: no inverse was recorded"
    undo_action = f"{inverse['action']['type']} {target(inverse)} {params(inverse['action'])}"
    verdict = _rollback_verdict(inverse, grant_body)
    if verdict is not None and not verdict.allowed:
        return f"{undo_action.rstrip()} — not offered: {verdict.why}"
    command = f'agent-authority rollback {meta["name"]} -n {meta["namespace"]} --reason "…"'
    suffix = "" if verdict is not None else " (the grant could not be read to check it)"
    return f"{undo_action.rstrip()}: {command}{suffix}"


def _rollback_verdict(inverse: api.Json, grant_body: api.Json | None) -> undo.Verdict | None:
    if grant_body is None:
        return None
    try:
        spec = grant.AgentGrantSpec.model_validate(grant_body.get("spec") or {})
        action = request_model.Action.model_validate(inverse["action"])
    except pydantic.ValidationError:
        return None
    read_namespaces: tuple[str, ...] = ()
    if all(scope.namespaces for scope in spec.read):
        read_namespaces = tuple(ns for scope in spec.read for ns in (scope.namespaces or []))
    name = f"grant '{grant_body['metadata']['name']}'"
    return undo.rollback_allowed(spec, action, read_namespaces, name)


def describe(
    item: api.Json, session: api.Json | None = None, grant_body: api.Json | None = None
) -> str:
    """A human-readable account of one request, for deciding on it."""
    spec, status = item["spec"], item.get("status") or {}
    phase = status.get("phase", "Pending")
    reason = f"  ({status['reason']})" if status.get("reason") else ""
    lines = [
        f"Request:     {item['metadata']['namespace']}/{item['metadata']['name']}",
        f"Phase:       {phase}{reason}",
        f"Action:      {spec['action']['type']} {target(spec)} {params(spec['action'])}".rstrip(),
        f"Requester:   {(spec.get('requester') or {}).get('username', '?')}",
        f"Session:     {spec['sessionRef']['name']}",
    ]
    if session is not None:
        incident = session["spec"]["incident"]
        lines += [
            f"Incident:    {incident['id']} {incident['severity']}/{incident['class']} "
            f"{incident.get('title', '')}".rstrip(),
            f"Grant:       {session['spec']['grantRef']['name']}",
            f"Agent:       {(session['spec'].get('requester') or {}).get('username', '?')}",
        ]
    if spec.get("rollbackOf"):
        lines.append(f"Rolls back:  {spec['rollbackOf']['name']}")
    lines += ["", "Hypothesis:", f"  {spec['hypothesis']}", "", "Evidence:"]
    for e in spec.get("evidence", []):
        lines.append(
            f"  - [{e['kind']}] {e['source']} (sha256 {e['sha256'][:12]}…, "
            f"observed {e.get('observedAt', '?')})"
        )
        if e.get("excerpt"):
            lines.append(f"      {e['excerpt']}")
    if not spec.get("evidence"):
        lines.append("  (none)")
    radius = status.get("blastRadius")
    if radius:
        reversible = "yes" if radius.get("reversible") else "no"
        lines += [
            "",
            f"Blast radius: {radius.get('podsAffected')} pod(s), replicas delta "
            f"{radius.get('replicasDelta')}, reversible: {reversible}",
        ]
    lines += ["", _changes_heading(phase)]
    lines += [f"  {change(c)}" for c in status.get("diff", [])]
    if not status.get("diff"):
        lines.append("  (no dry-run yet)" if phase in ("Pending", "") else "  (none recorded)")
    lines += ["", f"Undo:        {undo_line(item, grant_body)}"]
    lines += ["", f"Approvals:   {approvals(status)} (expires {status.get('expiresAt', '-')})"]
    for a in status.get("approvals", []):
        who = (a.get("approver") or {}).get("username", "?")
        lines.append(f"  - {a['decision']} by {who} at {a.get('time', '?')}: {a['reason']}")
    return "\n".join(lines)


def decide(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    for _attempt in range(5):
        try:
            item = _get(kube, namespace, args.name)
            given = list((item.get("status") or {}).get("approvals") or [])
            given.append({"decision": args.decision, "reason": args.reason})
            api.sync(
                kube.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                args.name,
                {
                    "metadata": {"resourceVersion": item["metadata"]["resourceVersion"]},
                    "status": {"approvals": given},
                },
            )
            break
        except errors.Conflict:
            continue  # someone else wrote meanwhile: re-read and append again
        except errors.NotFound as e:
            return connection.fail(str(e))
        except errors.KubeError as e:
            return connection.fail(f"{args.decision} refused: {e}")
    else:
        return connection.fail("the request kept changing; try again")
    final = _settle(kube, namespace, args.name, args.timeout)
    status = final.get("status") or {}
    print(f"{args.name}: {status.get('phase')}" + _why(status))
    return 0


def _why(status: api.Json) -> str:
    return f" ({status['reason']})" if status.get("reason") else ""


def _settle(kube: api.Kube, namespace: str, name: str, timeout: float) -> api.Json:
    """The request once it settled, or still awaiting approval after a second, or at timeout."""
    started = time.monotonic()
    while True:
        item = _get(kube, namespace, name)
        phase = (item.get("status") or {}).get("phase")
        waited = time.monotonic() - started
        if phase in SETTLED or (phase == "AwaitingApproval" and waited > 1) or waited > timeout:
            return item
        time.sleep(0.1)


def rollback_(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    original = _get(kube, namespace, args.name)
    status = original.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase != "Succeeded" or not status.get("inverse"):
        why = "has no recorded inverse" if phase == "Succeeded" else f"is {phase}"
        return connection.fail(
            f"cannot roll back {namespace}/{args.name}: it {why}; only a Succeeded request with "
            "a recorded inverse can be rolled back"
        )
    name = f"{args.name[:40].rstrip('-.')}-rollback-{uuid.uuid4().hex[:5]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RemediationRequest",
        "metadata": {"name": name},
        "spec": {
            "sessionRef": original["spec"]["sessionRef"],
            "action": status["inverse"]["action"],
            "hypothesis": f"Roll back {args.name}: {args.reason}",
            "evidence": original["spec"].get("evidence", []),
            "rollbackOf": {"name": args.name},
        },
    }
    try:
        api.sync(
            kube.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body
        )
    except errors.KubeError as e:
        return connection.fail(f"rollback of {namespace}/{args.name} refused: {e}")
    final = _settle(kube, namespace, name, args.timeout)
    final_status = final.get("status") or {}
    final_phase = final_status.get("phase") or "Pending"
    if final_phase in UNSUCCESSFUL:
        return connection.fail(
            f"rollback of {namespace}/{args.name} ({name}) is {final_phase}"
            + (f": {final_status['reason']}" if final_status.get("reason") else "")
            + _message(final_status)
        )
    print(f"{name}: {final_phase}" + _why(final_status) + f" (rolls back {args.name})")
    return failures.EXIT_OK


def _message(status: api.Json) -> str:
    ready = next(
        (c for c in status.get("conditions") or [] if c.get("message") and c.get("status")), None
    )
    return f" — {ready['message']}" if ready else ""
