"""kopf's peering record, read: who else runs as a replica of this operator, and their priority.

kopf keeps a ``ClusterKopfPeering`` (``kopf.dev/v1``) whose ``status`` maps each replica's id to
its priority, lifetime and last keep-alive; it pauses its own handlers while another live
replica outranks this one. Work the operator schedules itself (``controllers.session_lifetime``)
reads the same record to pause the same way (the decision is ``policy.lifetimes.leads``).
"""

from __future__ import annotations

from typing import Any

from agent_authority.kube import api, errors

GROUP = "kopf.dev"
VERSION = "v1"
PLURAL = "clusterkopfpeerings"


async def peers(kube: api.Kube, name: str) -> dict[str, Any]:
    """The peering record's ``status`` (replica id → priority, lifetime, lastseen); empty when
    the record does not exist yet."""
    try:
        found = await api.call(kube.custom.get_cluster_custom_object, GROUP, VERSION, PLURAL, name)
    except errors.NotFound:
        return {}
    status = found.get("status")
    return dict(status) if isinstance(status, dict) else {}
