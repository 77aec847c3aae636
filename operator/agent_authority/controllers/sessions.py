"""IncidentSession handlers."""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.models import GROUP, VERSION


@kopf.on.resume(GROUP, VERSION, "incidentsessions")
@kopf.on.create(GROUP, VERSION, "incidentsessions")
def observe(name: str, logger: Any, **_: Any) -> None:
    logger.info("IncidentSession %s observed", name)
