"""Which module performs each action type (wiring only; the decisions live in the modules)."""

from __future__ import annotations

import collections.abc
import types

from agent_authority.actions import base, cordon, delete_pod, restart, rollback, scale, suspend
from agent_authority.models import grant

_A = grant.ActionType

REGISTRY: collections.abc.Mapping[grant.ActionType, base.ActionModule] = types.MappingProxyType(
    {
        _A.RESTART_WORKLOAD: restart,
        _A.SCALE_WORKLOAD: scale,
        _A.ROLLBACK_DEPLOYMENT: rollback,
        _A.DELETE_POD: delete_pod,
        _A.CORDON_NODE: cordon,
        _A.UNCORDON_NODE: cordon,
        _A.SUSPEND_CRONJOB: suspend,
    }
)


def get(action_type: grant.ActionType) -> base.ActionModule:
    """The module for ``action_type``; :class:`base.NotApplicable` for an unknown type."""
    try:
        return REGISTRY[action_type]
    except KeyError:
        raise base.NotApplicable(f"spec.action.type: no action module for {action_type}") from None
