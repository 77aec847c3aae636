"""``agent-authority approvals serve``: the approval page outside the cluster, and the page and
notification options of ``agent-authority run``.

``approvals serve`` runs the same page the operator serves, against a kubeconfig: its user needs
only ``create tokenreviews`` (to check the tokens people paste); everything else is done with
each person's own token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from agent_authority.approvals import logins, server
from agent_authority.cli import help_text
from agent_authority.kube import api
from agent_authority.notify import receivers
from agent_authority.policy import page_transport


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The page and notification options of ``agent-authority run``."""
    run.add_argument("--approvals-port", type=int, default=0, help="approval page port; 0: off")
    run.add_argument("--approvals-addr", default="127.0.0.1", help="approval page address")
    run.add_argument("--approvals-cert", help="approval page TLS certificate (PEM)")
    run.add_argument("--approvals-key", help="approval page TLS key (PEM)")
    run.add_argument(
        "--approvals-insecure-http",
        action="store_true",
        help="plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)",
    )
    run.add_argument("--notify-config", help="notification receivers (YAML, docs/approvals.md)")


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """``runtime.Options`` fields from :func:`add_run_options`; a bad receivers file, or plain
    HTTP where tokens could be read off the wire, stops here, before the operator starts."""
    if args.approvals_port:
        tls = bool(args.approvals_cert and args.approvals_key)
        problem = page_transport.listen_problem(
            args.approvals_addr, tls, args.approvals_insecure_http
        )
        if problem is not None:
            raise SystemExit(f"error: {problem}")
    if args.notify_config:
        try:
            receivers.load(args.notify_config)
        except receivers.ConfigError as e:
            raise SystemExit(f"error: {e}") from e
    return {
        "approvals_port": args.approvals_port,
        "approvals_addr": args.approvals_addr,
        "approvals_cert": args.approvals_cert,
        "approvals_key": args.approvals_key,
        "approvals_insecure_http": args.approvals_insecure_http,
        "notify_config": args.notify_config,
    }


def add_parser(sub: Any) -> None:
    group = sub.add_parser(
        "approvals",
        help="the approval web page",
        **help_text.examples(
            """
            agent-authority approvals serve --kubeconfig "$KUBECONFIG"   # http://127.0.0.1:8443
            """
        ),
    )
    verbs = group.add_subparsers(dest="approvals_command", required=True, metavar="COMMAND")
    serve = verbs.add_parser(
        "serve",
        help="serve the approval page against a kubeconfig",
        **help_text.examples(
            """
            agent-authority approvals serve --kubeconfig "$KUBECONFIG" --port 8443
            agent-authority approvals serve --addr 0.0.0.0 --cert tls.crt --key tls.key
            """
        ),
    )
    serve.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    serve.add_argument("--addr", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8443, help="port (0: any free port)")
    serve.add_argument("--cert", help="TLS certificate (PEM); required off loopback")
    serve.add_argument("--key", help="TLS key (PEM)")
    serve.add_argument(
        "--insecure-http",
        action="store_true",
        help="plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)",
    )
    serve.add_argument(
        "--login-seconds",
        type=int,
        default=logins.DEFAULT_SECONDS,
        help=f"how long a sign-in lasts (60 to {logins.MAX_SECONDS})",
    )
    serve.add_argument(
        "--operator-user", default="", help="the operator's username (never offered a button)"
    )
    serve.set_defaults(func=serve_)


async def _serve(page: server.PageServer) -> None:
    await page.start()
    print(f"approval page at {page.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await page.stop()


def serve_(args: argparse.Namespace) -> int:
    settings = server.Settings(
        addr=args.addr,
        port=args.port,
        cert=args.cert,
        key=args.key,
        insecure_http=args.insecure_http,
        login_seconds=args.login_seconds,
        operator_username=args.operator_user,
    )
    page = server.PageServer(api.Kube.from_kubeconfig(args.kubeconfig), settings)
    try:
        asyncio.run(_serve(page))
    except server.ServeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
