"""The MCP server on the official SDK: stdio for a local agent, streamable HTTP for a remote one.

- stdio: one agent, whose base identity is the server's kubeconfig;
- HTTP: every request carries ``Authorization: Bearer <token>``; the server verifies it with a
  TokenReview (its own kubeconfig needs ``create tokenreviews`` and nothing else), refuses a
  missing or invalid token with 401, and acts with *that token* as the caller's base identity, so
  it can do no more than the caller could with kubectl. Each verified user has its own sessions.

Tool listings follow the caller's current session (``schemas.definitions``); tool failures are
tool errors carrying the operator's reason, never tracebacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from typing import Any

import mcp_types as types
from kubernetes import client
from mcp.server import lowlevel
from mcp.server.auth import provider
from mcp.server.auth import settings as auth_settings
from mcp.server.auth.middleware import auth_context

from agent_authority.kube import agentapi, errors
from agent_authority.mcp import agent, schemas, tools

logger = logging.getLogger(__name__)
NAME = "agent-authority"
TOKEN_CACHE_SECONDS = 10.0
INSTRUCTIONS = (
    "Agent Authority gives you bounded, short-lived, audited access to a Kubernetes cluster for "
    "one incident. Start with open_session; then only the tools your session allows are listed. "
    "You cannot change the cluster: propose_remediation asks the operator, which applies a "
    "change when policy or a human approves it. End the session when you are done."
)


class Principals:
    """Who is calling and their :class:`agent.Agent`: one fixed agent (stdio) or per user."""

    def __init__(self, template: client.ApiClient, namespace: str, fixed: agent.Agent | None):
        self.template = template
        self.namespace = namespace
        self.fixed = fixed
        self.by_user: dict[str, agent.Agent] = {}

    def current(self) -> agent.Agent:
        if self.fixed is not None:
            return self.fixed
        access = auth_context.get_access_token()
        if access is None:
            raise agent.ToolError("no verified bearer token on this request")
        known = self.by_user.get(access.client_id)
        base = agentapi.with_token(self.template, access.token)
        if known is None:
            known = agent.Agent(base, self.namespace, username=access.client_id)
            self.by_user[access.client_id] = known
        else:
            known.base = base  # the caller's current token (it may have been rotated)
        return known


class TokenReviewVerifier(provider.TokenVerifier):
    """Bearer tokens verified by the apiserver (TokenReview), successes cached briefly."""

    def __init__(self, reviewer: client.ApiClient) -> None:
        self.reviewer = reviewer
        self._cache: dict[str, tuple[float, provider.AccessToken]] = {}

    async def verify_token(self, token: str) -> provider.AccessToken | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < TOKEN_CACHE_SECONDS:
            return cached[1]
        try:
            user = await agentapi.token_review(self.reviewer, token)
        except errors.KubeError as e:
            logger.warning("TokenReview failed: %s", e)
            return None
        if user is None:
            return None
        access = provider.AccessToken(
            token=token,
            client_id=user.username,
            scopes=[],
            subject=user.username,
            claims={"groups": user.groups},
        )
        self._cache[key] = (time.monotonic(), access)
        return access


def _text(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


def build(principals: Principals) -> lowlevel.Server[Any]:
    """The SDK server with our list/call handlers."""

    async def list_tools(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        try:
            who = principals.current()
            if who.current is not None:
                with contextlib.suppress(agent.ToolError, errors.KubeError):
                    await who.refreshed(None)
            rules = who.rules()
        except agent.ToolError:
            rules = None
        return types.ListToolsResult(
            tools=[types.Tool.model_validate(t) for t in schemas.definitions(rules)]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            who = principals.current()
            result = await tools.call(who, params.name, dict(params.arguments or {}))
        except agent.ToolError as e:
            return types.CallToolResult(content=[types.TextContent(text=str(e))], is_error=True)
        except Exception as e:
            logger.exception("tool %s failed", params.name)
            return types.CallToolResult(
                content=[types.TextContent(text=f"{params.name} failed: {type(e).__name__}: {e}")],
                is_error=True,
            )
        if params.name in tools.CHANGES_TOOLS:
            with contextlib.suppress(Exception):
                await ctx.session.send_tool_list_changed()
        return types.CallToolResult(
            content=[types.TextContent(text=_text(result))], structured_content=result
        )

    return lowlevel.Server(
        NAME,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(base: client.ApiClient, namespace: str) -> None:
    from mcp.server import stdio

    principals = Principals(base, namespace, agent.Agent(base, namespace))
    server = build(principals)
    options = server.create_initialization_options(lowlevel.NotificationOptions(tools_changed=True))
    async with stdio.stdio_server() as (read, write):
        await server.run(read, write, options)


def http_app(reviewer: client.ApiClient, namespace: str, *, host: str, port: int) -> Any:
    """The streamable HTTP ASGI app (``/mcp``), bearer tokens required."""
    principals = Principals(reviewer, namespace, None)
    server = build(principals)
    url = f"http://{host}:{port}"
    return server.streamable_http_app(
        host=host,
        token_verifier=TokenReviewVerifier(reviewer),
        auth=auth_settings.AuthSettings(
            issuer_url=reviewer.configuration.host,
            resource_server_url=f"{url}/mcp",
            validate_token_resource=False,
        ),
    )


async def serve_http(reviewer: client.ApiClient, namespace: str, *, host: str, port: int) -> None:
    import uvicorn

    app = http_app(reviewer, namespace, host=host, port=port)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()
