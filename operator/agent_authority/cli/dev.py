"""``agent-authority dev``: local control plane + CRDs + demo objects + the operator, in one go.

The operator runs under its own identity (user ``agent-authority-operator``) bound to the
ClusterRole in ``config/rbac/`` — its ceiling — never as cluster-admin. Everything runs in this
process's tree and stops on Ctrl-C (or after ``--exit-after`` seconds).

The ports it needs are checked before anything is built or started. With the demo it prints
ready kubeconfigs for the agent and for two approvers (``alice`` and ``bob``, group
``oncall-sre``, bound by ``examples/rbac/approvers.yaml``), and writes them all, with ``PATH``,
to ``<run folder>/env.sh`` for ``source``. The run folder goes on Ctrl-C; the signed audit trail
and its key are kept in ``<cache>/dev-audit/`` (the path is printed at start and at stop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import errno
import os
import pathlib
import shlex
import signal
import socket
import sys
from typing import Any

import yaml

from agent_authority import runtime
from agent_authority.cli import failures, help_text
from agent_authority.kube import api, clients, manifests
from agent_authority.localcluster import assets, cluster, kubeconfig
from agent_authority.models import admission

ROOT = pathlib.Path(__file__).resolve().parents[3]
OPERATOR_USER = "agent-authority-operator"
DEMO_SESSION_NAMESPACES = ["agents"]
"""Where the demo's sessions live: the operator gets its session Role there."""
DEMO_SCOPE_NAMESPACES = ["shop"]
"""Where the demo's session scopes read (no sessions live there): the operator gets its scope
Role there, so it may write the sessions' Roles and RoleBindings."""
APPROVERS = ("alice", "bob")
APPROVER_GROUP = "oncall-sre"
DEMO: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agents"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sre-bot", "namespace": "agents"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/checkout:1"}]},
            },
        },
    },
]


@dataclasses.dataclass(frozen=True)
class OperatorEnv:
    """How to run the operator against a local control plane."""

    kubeconfig: pathlib.Path
    options: runtime.Options

    def run_args(self) -> list[str]:
        """``agent-authority run`` arguments that reproduce :attr:`options`."""
        o = self.options
        return [
            "run",
            f"--metrics-port={o.metrics_port}",
            f"--webhook-port={o.webhook_port}",
            f"--webhook-addr={o.webhook_addr}",
            f"--webhook-host={o.webhook_host}",
            f"--webhook-cert={o.webhook_cert}",
            f"--webhook-key={o.webhook_key}",
            f"--webhook-ca={o.webhook_ca}",
            f"--audit-port={o.audit_port}",
            f"--audit-client-ca={o.audit_client_ca}",
            f"--token-seconds={o.token_seconds}",
            f"--rotate-after={o.rotate_after}",
            *([f"--approvals-port={o.approvals_port}"] if o.approvals_port else []),
            *([f"--notify-config={o.notify_config}"] if o.notify_config else []),
            *([f"--audit-trail={o.audit_trail}"] if o.audit_trail else ["--no-audit-trail"]),
            f"--audit-addr={o.audit_addr}",
            *[f"--audit-client-name={name}" for name in o.audit_client_names],
            f"--alert-port={o.alert_port}",
            f"--alert-poll-seconds={o.alert_poll_seconds}",
            f"--gateway-port={o.gateway_port}",
            f"--gateway-addr={o.gateway_addr}",
            f"--gateway-audience={o.gateway_audience}",
            f"--session-mode={o.session_mode}",
        ]


def session_namespace_rbac(
    namespaces: list[str], operator_user: str = OPERATOR_USER
) -> list[dict[str, Any]]:
    """The operator's Role and RoleBinding in each namespace where sessions live (identity and
    token writes are granted there only, never cluster-wide)."""
    template = (ROOT / "config" / "rbac" / "operator-session-namespace.yaml").read_text()
    docs: list[dict[str, Any]] = []
    for namespace in namespaces:
        text = template.replace("SESSION_NAMESPACE", namespace)
        docs += [d for d in yaml.safe_load_all(text.replace("OPERATOR_USER", operator_user)) if d]
    return docs


def scope_namespace_rbac(
    namespaces: list[str], operator_user: str = OPERATOR_USER
) -> list[dict[str, Any]]:
    """The operator's scope Role and RoleBinding in each namespace session scopes read where no
    session lives (RBAC writes are granted there only, never cluster-wide)."""
    template = (ROOT / "config" / "rbac" / "operator-scope-namespace.yaml").read_text()
    docs: list[dict[str, Any]] = []
    for namespace in namespaces:
        text = template.replace("SCOPE_NAMESPACE", namespace)
        docs += [d for d in yaml.safe_load_all(text.replace("OPERATOR_USER", operator_user)) if d]
    return docs


def operator_rbac() -> list[dict[str, Any]]:
    """The operator's ClusterRole (its ceiling) and a binding to the local operator user."""
    role = manifests.load([ROOT / "config" / "rbac" / "operator-clusterrole.yaml"])
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "agent-authority-operator"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "agent-authority-operator",
        },
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": OPERATOR_USER}
        ],
    }
    return [*role, binding]


def admission_policies(operator_user: str = OPERATOR_USER) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicies (config/policies/), their parameter naming the operator's
    identity, and the namespace that parameter lives in: installed with the CRDs, so the rules
    hold before the operator's first start and whenever its webhooks are gone."""
    namespace = admission.DEFAULT_PARAMS_NAMESPACE
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        admission.params(operator_user, namespace),
        *manifests.load(sorted((ROOT / "config" / "policies").glob("*.yaml"))),
        *admission.webhook_configurations(),
    ]


def prepare(
    local: cluster.LocalCluster,
    *,
    metrics_port: int,
    webhook_port: int,
    audit_port: int,
    session_namespaces: list[str] | None = None,
    audit_trail: pathlib.Path | None = None,
    gateway_port: int = 0,
) -> OperatorEnv:
    """Install the CRDs, the admission policies and the operator's RBAC (plus its Role in each
    of ``session_namespaces``, which must exist); the kubeconfig and options to run it with."""
    admin = clients.api_client(str(local.kubeconfig))
    manifests.install_crds(admin, sorted((ROOT / "crds").glob("*.yaml")))
    manifests.apply(admin, admission_policies())
    manifests.apply(admin, operator_rbac())
    if session_namespaces:
        manifests.apply(admin, session_namespace_rbac(session_namespaces))
    serving = local.operator_serving()
    options = runtime.Options(
        metrics_port=metrics_port,
        webhook_port=webhook_port,
        webhook_addr="127.0.0.1",
        webhook_host="127.0.0.1",
        webhook_cert=str(serving.cert),
        webhook_key=str(serving.key),
        webhook_ca=str(local.ca_file),
        audit_port=audit_port,
        audit_client_ca=str(local.ca_file),
        audit_trail=str(audit_trail or local.pki_dir.parent / "audit-trail.jsonl"),
        gateway_port=gateway_port,
        gateway_addr="127.0.0.1",
    )
    return OperatorEnv(local.user_kubeconfig(OPERATOR_USER), options)


def _agent_kubeconfig(local: cluster.LocalCluster) -> pathlib.Path:
    """A kubeconfig for the demo agent's base identity (a TokenRequest token, 1 h)."""
    kube = api.Kube.from_kubeconfig(str(local.kubeconfig))
    review = api.sync(
        kube.core.create_namespaced_service_account_token,
        "sre-bot",
        "agents",
        {"spec": {"expirationSeconds": 3600}},
    )
    return kubeconfig.write(
        local.pki_dir.parent / "agent.kubeconfig",
        server=local.url,
        ca=local.ca_file,
        user="sre-bot",
        token=str(review["status"]["token"]),
        namespace="agents",
    )


def approver_kubeconfigs(local: cluster.LocalCluster) -> dict[str, pathlib.Path]:
    """Client-certificate kubeconfigs for the demo approvers (group ``oncall-sre``)."""
    return {name: local.user_kubeconfig(name, [APPROVER_GROUP]) for name in APPROVERS}


def env_lines(
    admin: pathlib.Path,
    agent: pathlib.Path | None,
    approvers: dict[str, pathlib.Path],
    bin_dir: pathlib.Path,
) -> list[str]:
    """The shell lines that make the tour's commands work as pasted."""
    lines = [
        f"export PATH={shlex.quote(str(bin_dir))}:$PATH",
        f"export KUBECONFIG={shlex.quote(str(admin))}",
    ]
    if agent is not None:
        lines.append(f"export AGENT_KUBECONFIG={shlex.quote(str(agent))}")
    for name, path in approvers.items():
        lines.append(f"export {name.upper()}_KUBECONFIG={shlex.quote(str(path))}")
    return lines


def check_ports(addr: str, ports: dict[str, int]) -> None:
    """Refuse at once, naming the port and its flag, when one is taken (before any build)."""
    for flag, port in ports.items():
        if port == 0:
            continue
        with socket.socket() as s:
            try:
                s.bind((addr, port))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                raise failures.CliError(
                    f"port {port} on {addr} ({flag}) is taken, perhaps by another "
                    f"`agent-authority dev`; stop it or pass {flag} with a free port"
                ) from e


def trail_path(name: str) -> pathlib.Path:
    """Where this run's audit trail is kept: outside the run folder, one file per start."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = assets.cache_dir() / "dev-audit"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-{stamp}.jsonl"


def add_parser(sub: Any) -> None:
    dev = sub.add_parser(
        "dev",
        help="start a local control plane, install the CRDs and the demo, run the operator",
        **help_text.examples(
            """
            hack/dev                                  # the same, creating .venv first
            agent-authority dev --metrics-port 18080  # when port 8080 is taken
            agent-authority dev --exit-after 60 --no-demo
            sudo hack/dev --node                      # the operator as pods on a real node
            """
        ),
    )
    dev.add_argument("--exit-after", type=float, default=0, help="stop after N seconds (0: never)")
    dev.add_argument("--metrics-port", type=int, default=8080)
    dev.add_argument("--webhook-port", type=int, default=9443)
    dev.add_argument("--audit-port", type=int, default=9444)
    dev.add_argument("--gateway-port", type=int, default=9446, help="session gateway; 0: off")
    dev.add_argument(
        "--session-mode",
        choices=["direct", "gateway"],
        default=None,
        help="mode of sessions whose grant sets none (default: direct; gateway with --node)",
    )
    dev.add_argument("--no-demo", action="store_true", help="do not apply the demo objects")
    dev.add_argument("--name", default="dev", help="name of the local control plane")
    dev.add_argument(
        "--node",
        action="store_true",
        help="a real node (root): the operator as pods of its chart, not a local process",
    )
    dev.set_defaults(func=run)


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def install_demo(local: cluster.LocalCluster) -> list[str]:
    """The demo: namespaces, the ``checkout`` Deployment, the agent's and approvers' RBAC, the
    grant ``sre-bot``, the operator's session Role in the demo's session namespace and its scope
    Role in the namespace the demo's scopes read."""
    admin = clients.api_client(str(local.kubeconfig))
    docs = DEMO + manifests.load(
        [
            ROOT / "examples" / "rbac" / "sre-bot-agent.yaml",
            ROOT / "examples" / "rbac" / "approvers.yaml",
            ROOT / "examples" / "agentgrant-sre-bot.yaml",
        ]
    )
    applied = manifests.apply(admin, docs)
    rbac = manifests.apply(admin, session_namespace_rbac(DEMO_SESSION_NAMESPACES))
    scopes = manifests.apply(admin, scope_namespace_rbac(DEMO_SCOPE_NAMESPACES))
    return [
        *applied,
        *(f"{name} (the operator may run sessions there)" for name in rbac),
        *(f"{name} (the operator may give sessions reads there)" for name in scopes),
    ]


def run(args: argparse.Namespace) -> int:
    if args.node:
        from agent_authority.cli import devnode  # here: devnode imports this module

        return devnode.run(args)
    check_ports(
        "127.0.0.1",
        {
            "--metrics-port": args.metrics_port,
            "--webhook-port": args.webhook_port,
            "--audit-port": args.audit_port,
            "--gateway-port": args.gateway_port,
        },
    )
    local = cluster.LocalCluster(
        cluster.Options(name=args.name, audit_url=f"https://127.0.0.1:{args.audit_port}/audit")
    )
    try:
        local.start()
    except (assets.AssetError, cluster.ClusterError) as e:
        raise failures.CliError(str(e)) from e
    trail = trail_path(args.name)
    try:
        _say(f"control plane ready in {local.startup_seconds:.1f} s at {local.url}")
        env = prepare(
            local,
            metrics_port=args.metrics_port,
            webhook_port=args.webhook_port,
            audit_port=args.audit_port,
            audit_trail=trail,
            gateway_port=args.gateway_port,
        )
        env.options.session_mode = args.session_mode or "direct"
        _say("CRDs and the operator's ClusterRole installed")
        agent: pathlib.Path | None = None
        approvers: dict[str, pathlib.Path] = {}
        if not args.no_demo:
            for applied in install_demo(local):
                _say(f"applied {applied}")
            agent = _agent_kubeconfig(local)
            approvers = approver_kubeconfigs(local)
            _say(f"agent kubeconfig (ServiceAccount agents/sre-bot): {agent}")
            for name, path in approvers.items():
                _say(f"approver kubeconfig ({name}, group {APPROVER_GROUP}): {path}")
        _say(f"metrics: http://127.0.0.1:{args.metrics_port}/metrics")
        _say(f"audit trail (kept after Ctrl-C): {trail} (key: {trail}.key)")
        lines = env_lines(local.kubeconfig, agent, approvers, pathlib.Path(sys.executable).parent)
        env_file = local.pki_dir.parent / "env.sh"
        env_file.write_text("\n".join(lines) + "\n")
        _say(f"in another shell: source {env_file}   # or paste:")
        for line in lines:
            print(line, flush=True)
        os.environ["KUBECONFIG"] = str(env.kubeconfig)
        asyncio.run(_operate(args, env.options))
    finally:
        local.stop()
        _say(f"stopped; the control plane is gone, the audit trail is kept in {trail}")
    return 0


async def _operate(args: argparse.Namespace, options: runtime.Options) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_after:
        loop.call_later(args.exit_after, stop.set)
    with contextlib.suppress(asyncio.CancelledError):
        await runtime.run(options, stop_flag=stop)
