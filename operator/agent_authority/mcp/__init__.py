"""``agent-authority mcp``: the Model Context Protocol server agents call tools on.

It owns the agent-facing tools (``tools``), each agent's sessions and credentials (``agent``),
and the SDK wiring for stdio and streamable HTTP with bearer tokens verified by TokenReview
(``server``). It adds no trust: it acts with the agent's base identity only to open, read and
end sessions, and with the session token for everything else, and it refuses calls outside the
session's rules (``policy.tools``) before they reach the apiserver. It never uses the operator's
identity and never imports the operator's controllers or webhooks.
"""
