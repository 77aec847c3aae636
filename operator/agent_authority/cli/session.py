"""``agent-authority session open|kubeconfig|end|list``: what an agent runs to get its credentials.

``open`` creates an IncidentSession as the caller (the admission webhook stamps who that is),
waits until it is Active, reads the session token from the one Secret the caller may read, and
writes a kubeconfig that authenticates with it. Refusals are printed as the apiserver or the
operator gave them (reason and message) and exit with status 1.
"""

from __future__ import annotations

import argparse
import base64
import pathlib
import sys
import time
import uuid
from typing import Any

import yaml

from agent_authority.cli import connection
from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION

PLURAL = "incidentsessions"
TERMINAL = {"Ended", "Expired", "Revoked", "Denied"}


def add_parser(sub: Any) -> None:
    session = sub.add_parser("session", help="open, use and end incident sessions (agents)")
    verbs = session.add_subparsers(dest="verb", required=True, metavar="VERB")

    opening = verbs.add_parser("open", help="open a session and write its kubeconfig")
    opening.add_argument("--grant", required=True, help="the AgentGrant to work under")
    opening.add_argument("--incident-id", required=True)
    opening.add_argument("--severity", required=True, choices=["SEV1", "SEV2", "SEV3", "SEV4"])
    opening.add_argument("--class", dest="incident_class", required=True, help="e.g. latency")
    opening.add_argument("--title")
    opening.add_argument("--url")
    opening.add_argument("--purpose", default="incident investigation")
    opening.add_argument("--ttl", type=int, help="seconds (at most the grant's maxTtlSeconds)")
    opening.add_argument("--parent", help="parent session (sub-agents can only narrow it)")
    opening.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="NAME[:NS,NS]",
        help="a grant scope, optionally narrowed to namespaces (repeatable; default: all)",
    )
    opening.add_argument("--name", help="session name (default: derived from the incident id)")
    opening.add_argument(
        "-o", "--kubeconfig-out", help="write the kubeconfig here (default: stdout)"
    )
    opening.add_argument("--timeout", type=float, default=60)
    connection.add_options(opening)
    opening.set_defaults(func=open_)

    kubeconfig = verbs.add_parser("kubeconfig", help="write the kubeconfig of an active session")
    kubeconfig.add_argument("name")
    kubeconfig.add_argument("-o", "--kubeconfig-out")
    connection.add_options(kubeconfig)
    kubeconfig.set_defaults(func=write_kubeconfig)

    end = verbs.add_parser("end", help="end a session (its credentials are revoked at once)")
    end.add_argument("name")
    end.add_argument("--timeout", type=float, default=30)
    connection.add_options(end)
    end.set_defaults(func=end_)

    listing = verbs.add_parser("list", help="list sessions")
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    connection.add_options(listing)
    listing.set_defaults(func=list_)


def _scopes(values: list[str]) -> list[dict[str, Any]] | None:
    scopes = []
    for value in values:
        name, _, namespaces = value.partition(":")
        scope: dict[str, Any] = {"name": name}
        if namespaces:
            scope["namespaces"] = [n for n in namespaces.split(",") if n]
        scopes.append(scope)
    return scopes or None


def _get(kube: api.Kube, namespace: str, name: str) -> api.Json:
    return api.sync(
        kube.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
    )


def _wait(kube: api.Kube, namespace: str, name: str, phases: set[str], timeout: float) -> api.Json:
    deadline = time.monotonic() + timeout
    while True:
        body = _get(kube, namespace, name)
        if (body.get("status") or {}).get("phase") in phases:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"session {namespace}/{name} is still "
                f"{(body.get('status') or {}).get('phase') or 'Pending'} after {timeout:.0f} s"
            )
        time.sleep(0.1)


def open_(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    name = args.name or f"{args.incident_id.lower()[:40].strip('-.')}-{uuid.uuid4().hex[:5]}"
    incident: dict[str, Any] = {
        "id": args.incident_id,
        "severity": args.severity,
        "class": args.incident_class,
    }
    if args.title:
        incident["title"] = args.title
    if args.url:
        incident["url"] = args.url
    spec: dict[str, Any] = {
        "grantRef": {"name": args.grant},
        "incident": incident,
        "purpose": args.purpose,
    }
    if args.ttl:
        spec["ttlSeconds"] = args.ttl
    if args.parent:
        spec["parentSession"] = args.parent
    scopes = _scopes(args.scope)
    if scopes:
        spec["scopes"] = scopes
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IncidentSession",
        "metadata": {"name": name},
        "spec": spec,
    }
    try:
        api.sync(
            kube.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, body
        )
        session = _wait(kube, namespace, name, {"Active", *TERMINAL}, args.timeout)
    except errors.KubeError as e:
        return connection.fail(f"session refused: {e}")
    except TimeoutError as e:
        return connection.fail(str(e))
    status = session.get("status") or {}
    if status.get("phase") != "Active":
        revocation = status.get("revocation") or {}
        return connection.fail(
            f"session {namespace}/{name} is {status.get('phase')}: "
            f"{revocation.get('reason', '')}: {revocation.get('message', '')}"
        )
    print(
        f"session {namespace}/{name} is Active until {status.get('expiresAt')}",
        file=sys.stderr,
    )
    return _emit_kubeconfig(kube, args, namespace, session)


def write_kubeconfig(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    try:
        session = _get(kube, namespace, args.name)
    except errors.KubeError as e:
        return connection.fail(str(e))
    if (session.get("status") or {}).get("phase") != "Active":
        return connection.fail(f"session {namespace}/{args.name} is not Active")
    return _emit_kubeconfig(kube, args, namespace, session)


def _emit_kubeconfig(
    kube: api.Kube, args: argparse.Namespace, namespace: str, session: api.Json
) -> int:
    try:
        secret = api.sync(
            kube.core.read_namespaced_secret, session["status"]["secretName"], namespace
        )
    except errors.KubeError as e:
        return connection.fail(f"cannot read the session token (only the requester may): {e}")
    data = secret["data"]
    token = base64.b64decode(data["token"]).decode()
    # Gateway mode: the operator stored the gateway's URL and CA beside the token.
    server = base64.b64decode(data["server"]).decode() if data.get("server") else None
    ca = base64.b64decode(data["ca.crt"]) if data.get("ca.crt") else None
    text = session_kubeconfig(
        kube, session["metadata"]["name"], namespace, token, server=server, ca=ca
    )
    if args.kubeconfig_out:
        path = pathlib.Path(args.kubeconfig_out)
        path.write_text(text)
        path.chmod(0o600)
        print(f"wrote {path} (export KUBECONFIG={path})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def session_kubeconfig(
    kube: api.Kube,
    name: str,
    namespace: str,
    token: str,
    *,
    server: str | None = None,
    ca: bytes | None = None,
) -> str:
    """A kubeconfig for the session token: for ``server`` with ``ca`` (the session gateway, in
    gateway mode), else for the same server as the caller's kubeconfig."""
    configuration = kube.client.configuration
    cluster: dict[str, Any] = {"server": server or configuration.host}
    if server is None and configuration.ssl_ca_cert:
        ca = pathlib.Path(configuration.ssl_ca_cert).read_bytes()
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    user = f"session-{name}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": user,
                    "context": {"cluster": "cluster", "user": user, "namespace": namespace},
                }
            ],
            "current-context": user,
        },
        sort_keys=False,
    )


def end_(args: argparse.Namespace) -> int:
    kube = connection.kube(args)
    namespace = connection.namespace(args)
    try:
        api.sync(
            kube.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            args.name,
            {"spec": {"ended": True}},
        )
        body = _wait(kube, namespace, args.name, TERMINAL, args.timeout)
    except (errors.KubeError, TimeoutError) as e:
        return connection.fail(str(e))
    print(f"session {namespace}/{args.name} is {body['status']['phase']}; credentials revoked")
    return 0


def list_(args: argparse.Namespace) -> int:
    try:
        items = connection.list_objects(args, PLURAL)
    except errors.KubeError as e:
        return connection.fail(str(e))
    rows = [["NAMESPACE", "NAME", "PHASE", "GRANT", "INCIDENT", "SEVERITY", "EXPIRES", "REQUESTER"]]
    for item in items:
        spec, status = item["spec"], item.get("status") or {}
        rows.append(
            [
                item["metadata"]["namespace"],
                item["metadata"]["name"],
                status.get("phase", "Pending"),
                spec["grantRef"]["name"],
                spec["incident"]["id"],
                spec["incident"]["severity"],
                status.get("expiresAt", "-"),
                (spec.get("requester") or {}).get("username", "-"),
            ]
        )
    connection.print_table(rows)
    return 0
