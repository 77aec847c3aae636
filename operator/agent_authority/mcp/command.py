"""The ``agent-authority mcp`` subcommand: run the MCP server over stdio or streamable HTTP."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agent_authority.kube import clients
from agent_authority.mcp import server


def add_parser(sub: Any) -> None:
    mcp = sub.add_parser(
        "mcp",
        help="MCP server for agents (stdio, or streamable HTTP with bearer tokens)",
        description=(
            "Serve Agent Authority's tools over the Model Context Protocol. stdio: the agent's "
            "identity is --kubeconfig. http: each request's bearer token is verified with a "
            "TokenReview (the --kubeconfig identity needs only 'create tokenreviews') and the "
            "server acts with that token."
        ),
        epilog=(
            "Examples:\n"
            '  agent-authority mcp --kubeconfig "$AGENT_KUBECONFIG" -n agents\n'
            "  agent-authority mcp --transport http --port 8765 -n agents   # POST /mcp\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mcp.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    mcp.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, then in-cluster)")
    mcp.add_argument(
        "-n", "--namespace", default="default", help="namespace sessions are opened in"
    )
    mcp.add_argument("--host", default="127.0.0.1", help="http: address to listen on")
    mcp.add_argument("--port", type=int, default=8765, help="http: port (path /mcp)")
    mcp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    base = clients.api_client(args.kubeconfig)
    if args.transport == "stdio":
        asyncio.run(server.serve_stdio(base, args.namespace))
    else:
        asyncio.run(server.serve_http(base, args.namespace, host=args.host, port=args.port))
    return 0
