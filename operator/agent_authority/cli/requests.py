"""Approver commands: ``requests``, ``show``, ``approve``, ``deny``, ``rollback``.

Approvals are appended to ``status.approvals`` through the status subresource; the admission
webhook stamps who you are, checks that you hold the ``approve`` verb on the grant, and refuses
self-approval and duplicate approvers. Its refusal is printed as it came.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from agent_authority.cli import connection
from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION

PLURAL = "remediationrequests"
SETTLED = {"Denied", "Succeeded", "Failed", "Expired", "Cancelled", "RolledBack"}


def add_parser(sub: Any) -> None:
    listing = sub.add_parser(
        "requests", help="list remediation requests (default: awaiting approval)"
    )
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    listing.add_argument("--all-phases", action="store_true", help="not only AwaitingApproval")
    connection.add_options(listing)
    listing.set_defaults(func=list_)

    show = sub.add_parser("show", help="everything an approver needs to decide on a request")
    show.add_argument("name")
    connection.add_options(show)
    show.set_defaults(func=show_)

    for verb, decision in (("approve", "approve"), ("deny", "deny")):
        cmd = sub.add_parser(
            verb, help=f"{verb} a remediation request (recorded with your identity)"
        )
        cmd.add_argument("name")
        cmd.add_argument("--reason", required=True, help="why (recorded in status.approvals)")
        cmd.add_argument("--timeout", type=float, default=30, help="wait this long for the outcome")
        connection.add_options(cmd)
        cmd.set_defaults(func=decide, decision=decision)

    rollback = sub.add_parser("rollback", help="undo an applied request with its recorded inverse")
    rollback.add_argument("name")
    rollback.add_argument("--reason", required=True)
    rollback.add_argument("--timeout", type=float, default=30)
    connection.add_options(rollback)
    rollback.set_defaults(func=rollback_)


def _get(kube: api.Kube, namespace: str, name: str) -> api.Json:
    return api.sync(
        kube.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
    )


def _target(spec: api.Json) -> str:
    target = spec["action"]["target"]
    where = f"{target['namespace']}/" if target.get("namespace") else ""
    return f"{target['kind']}/{where}{target['name']}"


def _approvals(status: api.Json) -> str:
    given = [a for a in status.get("approvals", []) if a.get("decision") == "approve"]
    return f"{len(given)}/{status.get('requiredApprovals', '?')}"


def list_(args: argparse.Namespace) -> int:
    try:
        items = connection.list_objects(args, PLURAL)
    except errors.KubeError as e:
        return connection.fail(str(e))
    rows = [
        [
            "NAMESPACE",
            "NAME",
            "ACTION",
            "TARGET",
            "PHASE",
            "APPROVALS",
            "PODS",
            "DELTA",
            "EVIDENCE",
            "CHANGES",
        ]
    ]
    for item in items:
        spec, status = item["spec"], item.get("status") or {}
        phase = status.get("phase", "Pending")
        if not args.all_phases and phase != "AwaitingApproval":
            continue
        radius = status.get("blastRadius") or {}
        diff = status.get("diff") or []
        rows.append(
            [
                item["metadata"]["namespace"],
                item["metadata"]["name"],
                spec["action"]["type"],
                _target(spec),
                phase,
                _approvals(status),
                str(radius.get("podsAffected", "-")),
                str(radius.get("replicasDelta", "-")),
                ",".join(sorted({e["kind"] for e in spec.get("evidence", [])})) or "none",
                "; ".join(f"{c['path']}: {c.get('before')} -> {c.get('after')}" for c in diff[:2])
                + (f" (+{len(diff) - 2})" if len(diff) > 2 else ""),
            ]
        )
    connection.print_table(rows)
    return 0


def show_(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    try:
        item = _get(kube, namespace, args.name)
    except errors.KubeError as e:
        return connection.fail(str(e))
    print(describe(item, session=_session(kube, namespace, item)))
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


def describe(item: api.Json, session: api.Json | None = None) -> str:
    """A human-readable account of one request, for deciding on it."""
    spec, status = item["spec"], item.get("status") or {}
    lines = [
        f"Request:     {item['metadata']['namespace']}/{item['metadata']['name']}",
        f"Phase:       {status.get('phase', 'Pending')}  ({status.get('reason', '')})",
        f"Action:      {spec['action']['type']} {_target(spec)} "
        f"{spec['action'].get('params') or ''}",
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
    for e in spec.get("evidence", []) or [{"kind": "none", "source": "-", "sha256": "-"}]:
        lines.append(f"  - [{e['kind']}] {e['source']} (sha256 {e['sha256'][:12]}…)")
        if e.get("excerpt"):
            lines.append(f"      {e['excerpt']}")
    radius = status.get("blastRadius")
    if radius:
        lines += [
            "",
            f"Blast radius: {radius.get('podsAffected')} pod(s), replicas delta "
            f"{radius.get('replicasDelta')}, reversible: {radius.get('reversible')}",
        ]
    lines += ["", "What will change (server-side dry-run):"]
    lines += [
        f"  {c['path']}: {c.get('before')} -> {c.get('after')}" for c in status.get("diff", [])
    ]
    if not status.get("diff"):
        lines.append("  (no dry-run yet)")
    inverse = status.get("inverse")
    lines += [
        "",
        "Undo:        "
        + (
            f"{inverse['action']['type']} {_target(inverse)} "
            f"{inverse['action'].get('params') or ''}"
            if inverse
            else "not reversible"
        ),
    ]
    lines += ["", f"Approvals:   {_approvals(status)} (expires {status.get('expiresAt', '-')})"]
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
        except errors.KubeError as e:
            return connection.fail(f"{args.decision} refused: {e}")
    else:
        return connection.fail("the request kept changing; try again")
    final = _settle(kube, namespace, args.name, args.timeout)
    status = final.get("status") or {}
    print(f"{args.name}: {status.get('phase')} ({status.get('reason', '')})")
    return 0


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
    try:
        original = _get(kube, namespace, args.name)
    except errors.KubeError as e:
        return connection.fail(str(e))
    status = original.get("status") or {}
    if status.get("phase") != "Succeeded" or not status.get("inverse"):
        return connection.fail(
            f"{args.name} is {status.get('phase')} and "
            f"{'has a recorded inverse' if status.get('inverse') else 'has no recorded inverse'}"
            "; only a Succeeded, reversible request can be rolled back"
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
        return connection.fail(f"rollback refused: {e}")
    final = _settle(kube, namespace, name, args.timeout)
    final_status = final.get("status") or {}
    print(f"{name}: {final_status.get('phase', 'Pending')} ({final_status.get('reason', '')})")
    return 0
