"""RemediationRequest handlers."""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.models import GROUP, VERSION


@kopf.on.resume(GROUP, VERSION, "remediationrequests")
@kopf.on.create(GROUP, VERSION, "remediationrequests")
def observe(name: str, logger: Any, **_: Any) -> None:
    logger.info("RemediationRequest %s observed", name)
