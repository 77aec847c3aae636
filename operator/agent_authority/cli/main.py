"""Entry point of ``agent-authority``: parse the command line and dispatch to a command module."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from agent_authority import __version__
from agent_authority.cli import dev
from agent_authority.controllers import runtime


def _run(args: argparse.Namespace) -> int:
    options = runtime.Options(
        metrics_port=args.metrics_port, metrics_addr=args.metrics_addr, verbose=args.verbose
    )
    asyncio.run(runtime.run(options))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="agent-authority",
        description="Bounded, short-lived, audited Kubernetes authority for AI incident agents.",
    )
    top.add_argument("--version", action="version", version=f"agent-authority {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--metrics-port", type=int, default=8080, help="0 disables /metrics")
    run.add_argument("--metrics-addr", default="127.0.0.1")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    dev.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
