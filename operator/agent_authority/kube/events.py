"""Post Kubernetes Events about our objects (``kubectl describe`` shows them)."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

from agent_authority.kube import api, errors

COMPONENT = "agent-authority"
logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


async def post(
    kube: api.Kube, body: dict[str, Any], *, reason: str, message: str, warning: bool = False
) -> None:
    """Create one Event about ``body``; failures are logged, never raised (best effort)."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = _now()
    event = {
        "metadata": {"name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:12]}"},
        "involvedObject": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await api.call(kube.core.create_namespaced_event, namespace, event)
    except errors.KubeError as e:
        logger.warning("could not post event %s about %s: %s", reason, meta.get("name"), e)
