"""Whether a grant lets an applied request be undone: the recorded inverse must be requestable.

``agent-authority show`` offers ``rollback`` only when this says yes, so it never suggests a
request the operator would deny as out of scope. Pure: the grant spec and the inverse action in,
a verdict with a reason out (the same scope rules as :mod:`remediation` for type and namespace).
"""

from __future__ import annotations

import dataclasses

from agent_authority.models import grant, request
from agent_authority.policy import blast


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    why: str
    """Why not (empty when allowed), naming the action and the grant."""


def rollback_allowed(
    spec: grant.AgentGrantSpec,
    inverse: request.Action,
    read_namespaces: tuple[str, ...] = (),
    grant_name: str = "the grant",
) -> Verdict:
    """Would a rollback request carrying ``inverse`` be in scope of ``spec``?"""
    entries = [e for e in spec.remediations if e.action is inverse.type]
    if not entries:
        return Verdict(False, f"{grant_name} has no remediation entry for {inverse.type}")
    target_ns = inverse.target.namespace
    for entry in entries:
        if entry.autonomy is grant.Autonomy.NEVER:
            return Verdict(False, f"{inverse.type} has autonomy 'never' in {grant_name}")
    for entry in entries:
        if entry.action in blast.NODE_ACTIONS or target_ns is None:
            return Verdict(True, "")
        allowed = entry.namespaces or list(read_namespaces)
        if target_ns in allowed or (not entry.namespaces and not read_namespaces):
            return Verdict(True, "")
    return Verdict(
        False, f"{inverse.type} in namespace {target_ns} is outside {grant_name}'s remediations"
    )
