"""Operator-wide knobs of the session controller, and the token options they imply.

:data:`SETTINGS` is set by the runtime at start-up (token lifetime, rotation point, default
access mode, the session gateway this operator runs); :func:`mint_seconds` and
:func:`token_options` turn them into the arguments of a token mint.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import kopf

from agent_authority.controllers import session_fields
from agent_authority.kube import tokens
from agent_authority.models import grant


@dataclasses.dataclass
class Settings:
    """Operator-wide knobs of the session controller (set by the runtime at start-up)."""

    token_seconds: int = 3600
    """Longest token lifetime asked for (a token lives for the session's remaining life, never
    below 600 s; the apiserver may shorten it further)."""
    rotate_after: float = 0.8
    """Rotate when this fraction of the token's lifetime has passed (or after N s if > 1)."""
    access_mode: grant.AccessMode = grant.AccessMode.DIRECT
    """Mode of sessions whose grant does not choose one (``--session-mode``)."""
    gateway: GatewayTarget | None = None
    """The session gateway, when this operator runs one (gateway mode needs it)."""


@dataclasses.dataclass(frozen=True)
class GatewayTarget:
    """What a gateway-mode token is minted for and what its kubeconfig points at."""

    audience: str
    server: str
    ca_pem: str


SETTINGS = Settings()


def mint_seconds(expires_at: datetime.datetime | None) -> int:
    """How long a token minted now should live: the session's remaining life, bounded."""
    remaining = (
        (expires_at - session_fields.now()).total_seconds()
        if expires_at
        else SETTINGS.token_seconds
    )
    return tokens.token_seconds(remaining, SETTINGS.token_seconds)


def token_options(mode: str | None) -> dict[str, Any]:
    """``mint`` arguments for a session of ``mode`` (gateway: the gateway's audience only)."""
    if mode != grant.AccessMode.GATEWAY.value:
        return {}
    target = SETTINGS.gateway
    if target is None:  # never fall back to an apiserver token: that would widen the session
        raise kopf.TemporaryError("gateway-mode session, but this operator runs no gateway", 10)
    return {
        "audiences": [target.audience],
        "extra": {"server": target.server, "ca.crt": target.ca_pem},
    }
