"""Entry point of ``agent-authority``: parse the command line and dispatch to a command module."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from agent_authority import __version__, runtime
from agent_authority.cli import audit, dev, grant, requests, session


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
        audit_client_ca=args.audit_client_ca,
        token_seconds=args.token_seconds,
        rotate_after=args.rotate_after,
        audit_trail=args.audit_trail,
        audit_trail_key=args.audit_trail_key,
        gateway_port=args.gateway_port,
        gateway_addr=args.gateway_addr,
        gateway_url=args.gateway_url,
        gateway_audience=args.gateway_audience,
        session_mode=args.session_mode,
    )
    asyncio.run(runtime.run(options))
    return 0


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = runtime.Options()
    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
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
    run.add_argument("--audit-client-ca", help="CA of the apiserver's audit client certificate")
    run.add_argument(
        "--token-seconds", type=int, default=defaults.token_seconds, help=">= 600 (TokenRequest)"
    )
    run.add_argument(
        "--rotate-after",
        type=float,
        default=defaults.rotate_after,
        help="rotate tokens after this fraction of their life (or N seconds if > 1)",
    )
    run.add_argument("--audit-trail", help="signed, hash-chained audit trail (JSON lines)")
    run.add_argument("--audit-trail-key", help="its Ed25519 key (default: <trail>.key)")
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
        description="Bounded, short-lived, audited Kubernetes authority for AI incident agents.",
    )
    top.add_argument("--version", action="version", version=f"agent-authority {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    dev.add_parser(sub)
    session.add_parser(sub)
    grant.add_parser(sub)
    audit.add_parser(sub)
    requests.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
