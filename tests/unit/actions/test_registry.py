"""Every action type has a module, and every module has the interface."""

from __future__ import annotations

import inspect

import pytest

from agent_authority.actions import base, registry
from agent_authority.models import grant


def test_every_action_type_has_a_module() -> None:
    assert set(registry.REGISTRY) == set(grant.ActionType)


@pytest.mark.parametrize("action_type", list(grant.ActionType))
def test_each_module_handles_its_type_with_the_interface(action_type: grant.ActionType) -> None:
    module = registry.get(action_type)
    assert action_type in module.TYPES
    for name in ("plan", "dry_run", "apply"):
        assert inspect.iscoroutinefunction(getattr(module, name)), name
    assert list(inspect.signature(module.plan).parameters) == [
        "kube",
        "action",
        "request_uid",
        "requested_at",
        "pinned",
    ]


def test_an_unknown_type_is_not_applicable() -> None:
    with pytest.raises(base.NotApplicable, match="no action module for bogus"):
        registry.get("bogus")  # type: ignore[arg-type]
