"""``agent-authority session open|kubeconfig|end|list``: what an agent runs to get its credentials.

``open`` creates an IncidentSession as the caller (the admission webhook stamps who that is),
waits until it is Active, reads the session token from the one Secret the caller may read
(retrying while the operator's RoleBinding for it propagates), and writes a kubeconfig that
authenticates with it (``--write-kubeconfig FILE``, created 0600; default: stdout). Refusals are
printed as the apiserver or the operator gave them (reason and message) and exit with status 1.
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

from agent_authority.cli import connection, durations, files, help_text, printing
from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION

PLURAL = "incidentsessions"
TERMINAL = {"Ended", "Expired", "Revoked", "Denied"}
TOKEN_READ_SECONDS = 15.0
"""How long ``open`` keeps retrying to read the token Secret (403/404/429/5xx are transient)."""


def add_parser(sub: Any) -> None:
    session = sub.add_parser(
        "session",
        help="open, use and end incident sessions (agents)",
        **help_text.examples(
            """
            agent-authority session open --grant sre-bot --incident-id INC-4711 --severity SEV2 \\
                --class latency -n agents --write-kubeconfig /tmp/session.kubeconfig
            agent-authority session list -n agents
            agent-authority session end inc-4711-triage -n agents
            """
        ),
    )
    verbs = session.add_subparsers(dest="verb", required=True, metavar="VERB")

    opening = verbs.add_parser(
        "open",
        help="open a session and write its kubeconfig",
        **help_text.examples(
            """
            # Open a session for an incident; write its kubeconfig (created 0600)
            agent-authority session open --grant sre-bot --incident-id INC-4711 --severity SEV2 \\
                --class latency --name inc-4711-triage -n agents \\
                --write-kubeconfig /tmp/session.kubeconfig

            # One scope, narrowed to one namespace, for 30 minutes; the kubeconfig on stdout
            agent-authority session open --grant sre-bot --incident-id INC-4712 --severity SEV3 \\
                --class latency --scope shop-workloads:shop --ttl 30m -n agents > session.kubeconfig
            """
        ),
    )
    opening.add_argument("--grant", required=True, help="the AgentGrant to work under")
    opening.add_argument("--incident-id", required=True)
    opening.add_argument("--severity", required=True, choices=["SEV1", "SEV2", "SEV3", "SEV4"])
    opening.add_argument("--class", dest="incident_class", required=True, help="e.g. latency")
    opening.add_argument("--title")
    opening.add_argument("--url")
    opening.add_argument("--purpose", default="incident investigation")
    opening.add_argument(
        "--ttl",
        type=durations.argument,
        help="how long the session lives: 600, 90s, 30m, 1h (at most the grant's maxTtlSeconds, "
        "which is also the default)",
    )
    opening.add_argument("--parent", help="parent session (sub-agents can only narrow it)")
    opening.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="NAME[:NS,NS]",
        help="a grant scope, optionally narrowed to namespaces (repeatable; default: all)",
    )
    opening.add_argument("--name", help="session name (default: derived from the incident id)")
    _add_write_kubeconfig(opening)
    opening.add_argument(
        "--timeout",
        type=durations.argument,
        default=60,
        help="wait this long for Active (default: 60s)",
    )
    connection.add_options(opening)
    opening.set_defaults(func=open_)

    kubeconfig = verbs.add_parser(
        "kubeconfig",
        help="write the kubeconfig of an active session",
        **help_text.examples(
            """
            agent-authority session kubeconfig inc-4711-triage -n agents \\
                --write-kubeconfig /tmp/session.kubeconfig
            """
        ),
    )
    kubeconfig.add_argument("name")
    _add_write_kubeconfig(kubeconfig)
    connection.add_options(kubeconfig)
    kubeconfig.set_defaults(func=write_kubeconfig)

    end = verbs.add_parser(
        "end",
        help="end a session (its credentials are revoked at once)",
        **help_text.examples("agent-authority session end inc-4711-triage -n agents"),
    )
    end.add_argument("name")
    end.add_argument("--timeout", type=durations.argument, default=30, help="default: 30s")
    connection.add_options(end)
    end.set_defaults(func=end_)

    listing = verbs.add_parser(
        "list",
        help="list sessions (phase with the revocation reason)",
        **help_text.examples(
            """
            agent-authority session list -n agents
            agent-authority session list -A -o wide
            agent-authority session list -n agents -o json
            """
        ),
    )
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    printing.add_output(listing)
    connection.add_options(listing)
    listing.set_defaults(func=list_)


def _add_write_kubeconfig(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write-kubeconfig",
        metavar="FILE",
        help="write the session's kubeconfig to FILE, created 0600 (default: stdout)",
    )


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
        why = ": ".join(str(p) for p in (revocation.get("reason"), revocation.get("message")) if p)
        return connection.fail(
            f"session {namespace}/{name} is {status.get('phase')}" + (f": {why}" if why else "")
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
    secret_name = (session.get("status") or {}).get("secretName")
    if not secret_name:
        name = session["metadata"]["name"]
        return connection.fail(f"session {namespace}/{name} has no token yet")
    try:
        data = read_credentials(kube, namespace, secret_name, TOKEN_READ_SECONDS)
    except errors.KubeError as e:
        return connection.fail(
            f"cannot read the session token Secret {namespace}/{secret_name} "
            f"(only the session's requester may): {e}"
        )
    token = data["token"]
    # Gateway mode: the operator stored the gateway's URL and CA beside the token.
    server = data.get("server") or None
    ca = data["ca.crt"].encode() if data.get("ca.crt") else None
    text = session_kubeconfig(
        kube, session["metadata"]["name"], namespace, token, server=server, ca=ca
    )
    if args.write_kubeconfig:
        path = pathlib.Path(args.write_kubeconfig)
        files.write_private(path, text)
        print(f"wrote {path} (export KUBECONFIG={path})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def read_token(
    kube: api.Kube,
    namespace: str,
    secret_name: str,
    within: float,
    sleep: Any = time.sleep,
    clock: Any = time.monotonic,
) -> str:
    """The token in the session's Secret (see ``read_credentials``)."""
    return read_credentials(kube, namespace, secret_name, within, sleep, clock)["token"]


def read_credentials(
    kube: api.Kube,
    namespace: str,
    secret_name: str,
    within: float,
    sleep: Any = time.sleep,
    clock: Any = time.monotonic,
) -> dict[str, str]:
    """The session Secret's data, decoded (``token``; in gateway mode also the gateway's
    ``server`` and ``ca.crt``), retrying transient refusals until ``within`` seconds.

    Right after a session turns Active the requester's RoleBinding on its Secret may not have
    reached the apiserver's RBAC cache yet (403), the Secret may not be visible yet (404), and the
    apiserver may be busy (429/5xx): all are retried with a capped backoff. Any other refusal, or
    the deadline, raises the last error.
    """
    deadline = clock() + within
    delay = 0.1
    while True:
        try:
            secret = api.sync(kube.core.read_namespaced_secret, secret_name, namespace)
            data = secret.get("data") or {}
            if data.get("token"):
                return {key: base64.b64decode(value).decode() for key, value in data.items()}
            last: errors.KubeError = errors.NotFound(f"Secret {secret_name} has no token yet", 404)
        except (errors.Forbidden, errors.NotFound, errors.Unavailable) as e:
            last = e
        if clock() + delay > deadline:
            raise last
        sleep(delay)
        delay = min(delay * 2, 2.0)


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


def phase_of(item: api.Json) -> str:
    """``Active``, or a terminal phase with its reason: ``Revoked (Deviation)``."""
    status = item.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    reason = (status.get("revocation") or {}).get("reason")
    return f"{phase} ({reason})" if reason and reason != phase else phase


def _expires(item: api.Json) -> str:
    """When access ends: ``expiresAt`` while it may still be used, ``-`` once it is over."""
    status = item.get("status") or {}
    if status.get("phase") in TERMINAL:
        return "-"
    return str(status.get("expiresAt") or "-")


def _header(wide: bool) -> list[str]:
    header = ["NAMESPACE", "NAME", "PHASE", "GRANT", "INCIDENT", "SEVERITY", "EXPIRES", "REQUESTER"]
    return header + (["ENDED", "MESSAGE"] if wide else [])


def _row(item: api.Json, wide: bool) -> list[str]:
    spec, status = item["spec"], item.get("status") or {}
    row = [
        item["metadata"]["namespace"],
        item["metadata"]["name"],
        phase_of(item),
        spec["grantRef"]["name"],
        spec["incident"]["id"],
        spec["incident"]["severity"],
        _expires(item),
        (spec.get("requester") or {}).get("username", "-"),
    ]
    if wide:
        revocation = status.get("revocation") or {}
        row += [str(revocation.get("time") or "-"), str(revocation.get("message") or "-")]
    return row


def list_(args: argparse.Namespace) -> int:
    items = connection.list_objects(args, PLURAL)
    printing.emit_list(
        items,
        args.output,
        header=_header,
        row=_row,
        empty=f"No incident sessions found {connection.where(args)}.",
        kind="IncidentSession",
    )
    return 0
