"""AgentGrant handlers: validate the spec and report it in status."""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.models import GROUP, VERSION


@kopf.on.resume(GROUP, VERSION, "agentgrants")
@kopf.on.create(GROUP, VERSION, "agentgrants")
@kopf.on.update(GROUP, VERSION, "agentgrants")
def observe(name: str, logger: Any, **_: Any) -> None:
    logger.info("AgentGrant %s observed", name)
