"""Entry point of ``agent-authority``: parse the command line and dispatch to a command module.

Every failure a user can cause or meet (no kubeconfig, an unreachable apiserver, a refusal, a
closed pipe) ends as one ``error:`` line and an exit code from :mod:`failures`, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from agent_authority import __version__, runtime
from agent_authority.cli import (
    approvals,
    audit,
    completion,
    connection,
    dev,
    failures,
    grant,
    help_text,
    requests,
    session,
    uninstall,
)
from agent_authority.mcp import command as mcp_command


def _run(args: argparse.Namespace) -> int:
    options = runtime.Options(
        metrics_port=args.metrics_port,
        metrics_addr=args.metrics_addr,
        verbose=args.verbose,
        webhook_port=args.webhook_port,
        webhook_addr=args.webhook_addr,
        webhook_host=args.webhook_host,
        webhook_cert=args.webhook_cert,
        webhook_key=args.webhook_key,
        webhook_ca=args.webhook_ca,
        cert_dir=args.cert_dir,
        audit_port=args.audit_port,
        audit_addr=args.audit_addr,
        audit_client_ca=args.audit_client_ca,
        audit_client_names=tuple(args.audit_client_name or runtime.Options().audit_client_names),
        token_seconds=args.token_seconds,
        rotate_after=args.rotate_after,
        audit_trail=None if args.no_audit_trail else args.audit_trail,
        audit_trail_key=args.audit_trail_key,
        **approvals.run_options(args),
        audit_trail_previous_key=args.audit_trail_previous_key,
        alert_port=args.alert_port,
        alert_poll_seconds=args.alert_poll_seconds,
        peering=args.peering,
        peering_lifetime=args.peering_lifetime,
        webhooks_managed=not args.no_manage_webhooks,
        gateway_port=args.gateway_port,
        gateway_addr=args.gateway_addr,
        gateway_url=args.gateway_url,
        gateway_audience=args.gateway_audience,
        session_mode=args.session_mode,
    )
    try:
        asyncio.run(runtime.run(options))
    except runtime.StartupError as e:
        print(f"agent-authority: refusing to start: {e}", file=sys.stderr)
        return 2
    return 0


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = runtime.Options()
    run = sub.add_parser(
        "run",
        help="run the operator against the current kubeconfig",
        **help_text.examples(
            """
            agent-authority run --kubeconfig op.kubeconfig --audit-trail /var/lib/aa/trail.jsonl
            agent-authority run --metrics-port 9090 --webhook-host operator.example.internal
            """
        ),
    )
    run.add_argument("--metrics-port", type=int, default=defaults.metrics_port, help="0: off")
    run.add_argument("--metrics-addr", default=defaults.metrics_addr)
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("--webhook-port", type=int, default=defaults.webhook_port)
    run.add_argument("--webhook-addr", default=defaults.webhook_addr, help="address to listen on")
    run.add_argument(
        "--webhook-host", default=defaults.webhook_host, help="how the apiserver reaches us"
    )
    run.add_argument("--webhook-cert", help="serving certificate (PEM); generated if not given")
    run.add_argument("--webhook-key", help="serving key (PEM)")
    run.add_argument("--webhook-ca", help="CA of the serving certificate (the caBundle)")
    run.add_argument("--cert-dir", help="where to generate certificates when none are given")
    run.add_argument(
        "--audit-port", type=int, default=defaults.audit_port, help="/audit endpoint; 0: off"
    )
    run.add_argument("--audit-addr", default=defaults.audit_addr, help="/audit listens here")
    run.add_argument(
        "--audit-client-ca", help="CA of the apiserver's audit client certificate (required)"
    )
    run.add_argument(
        "--audit-client-name",
        action="append",
        metavar="CN",
        help="common name of the apiserver's audit client certificate (repeatable; default "
        f"{defaults.audit_client_names[0]}); other clients of the CA are refused",
    )
    run.add_argument(
        "--token-seconds", type=int, default=defaults.token_seconds, help=">= 600 (TokenRequest)"
    )
    run.add_argument(
        "--rotate-after",
        type=float,
        default=defaults.rotate_after,
        help="rotate tokens after this fraction of their life (or N seconds if > 1)",
    )
    run.add_argument(
        "--audit-trail",
        default=defaults.audit_trail,
        help="signed, hash-chained audit trail (JSON lines; default %(default)s)",
    )
    run.add_argument(
        "--no-audit-trail", action="store_true", help="run without a trail (say so explicitly)"
    )
    run.add_argument("--audit-trail-key", help="its Ed25519 key (default: <trail>.key)")
    approvals.add_run_options(run)
    run.add_argument(
        "--audit-trail-previous-key",
        help="the key the trail was signed with so far: hand the log over to --audit-trail-key",
    )
    run.add_argument(
        "--alert-port", type=int, default=defaults.alert_port, help="/alertmanager receiver; 0: off"
    )
    run.add_argument(
        "--alert-poll-seconds",
        type=float,
        default=defaults.alert_poll_seconds,
        help="how often alert-bound sessions are checked against Alertmanager (0: never)",
    )
    run.add_argument(
        "--peering", help="ClusterKopfPeering name: elect one leader among replicas (HA)"
    )
    run.add_argument(
        "--peering-lifetime",
        type=int,
        default=defaults.peering_lifetime,
        help="seconds a silent leader is trusted (fail-over bound)",
    )
    run.add_argument(
        "--no-manage-webhooks",
        action="store_true",
        help="serve the webhooks but leave their configurations to the installer (Helm chart)",
    )
    run.add_argument(
        "--gateway-port", type=int, default=defaults.gateway_port, help="session gateway; 0: off"
    )
    run.add_argument("--gateway-addr", default=defaults.gateway_addr, help="address to listen on")
    run.add_argument(
        "--gateway-url", help="how agents reach the gateway (default https://<webhook-host>:<port>)"
    )
    run.add_argument(
        "--gateway-audience",
        default=defaults.gateway_audience,
        help="audience of gateway-mode session tokens",
    )
    run.add_argument(
        "--session-mode",
        choices=["direct", "gateway"],
        default=defaults.session_mode,
        help="mode of sessions whose grant sets no spec.session.accessMode",
    )
    run.set_defaults(func=_run)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="agent-authority",
        description="Bounded, short-lived, audited Kubernetes authority for AI incident agents. "
        "Also runs as the kubectl plugin `kubectl agent`. Exit codes: 0 done, 1 failed or "
        "refused, 2 usage, 130 interrupted.",
        **{
            k: v
            for k, v in help_text.examples(
                """
                agent-authority requests -A --all-phases
                kubectl agent -n agents session list
                source <(agent-authority completion bash)
                """
            ).items()
            if k != "description"
        },
    )
    top.add_argument("--version", action="version", version=f"agent-authority {__version__}")
    connection.add_global_options(top)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    dev.add_parser(sub)
    session.add_parser(sub)
    grant.add_parser(sub)
    audit.add_parser(sub)
    requests.add_parser(sub)
    approvals.add_parser(sub)
    mcp_command.add_parser(sub)
    completion.add_parser(sub)
    uninstall.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        failures.silence_stdout()  # `agent-authority requests -A | head`: the reader has enough
        return failures.EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return failures.EXIT_INTERRUPTED
    except Exception as e:
        explained = failures.message(e)
        if explained is None:
            raise
        print(f"error: {explained}", file=sys.stderr)
        return e.code if isinstance(e, failures.CliError) else failures.EXIT_FAILED
    return result


if __name__ == "__main__":
    sys.exit(main())
