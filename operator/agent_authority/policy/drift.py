"""Apply time: is the target still the one that was reviewed, and how a change reads to people.

Pure: the executor re-plans the change against the live target and passes the reviewed record
(``status.targetUid``, ``status.diff``, ``status.blastRadius``) with the new plan;
:func:`target_drift` says why they differ, or ``None``. The ``render_*`` helpers make diffs and
blast radii readable in conditions and Events.
"""

from __future__ import annotations

import collections.abc

from agent_authority.models import request


def render_value(value: str | None) -> str:
    """A diff value for people: absent fields are ``(unset)``, never ``None``."""
    return "(unset)" if value is None else value


def render_diff(changes: collections.abc.Sequence[request.FieldChange]) -> str:
    """``spec.replicas: 3 -> 6; spec.paused: (unset) -> true``; ``no change`` when empty."""
    if not changes:
        return "no change"
    return "; ".join(
        f"{c.path}: {render_value(c.before)} -> {render_value(c.after)}" for c in changes
    )


def render_radius(radius: request.BlastRadius) -> str:
    """``3 pods affected, replicas +2, reversible``."""
    parts = [f"{radius.pods_affected} pod{'' if radius.pods_affected == 1 else 's'} affected"]
    if radius.replicas_delta:
        parts.append(f"replicas {radius.replicas_delta:+d}")
    parts.append("reversible" if radius.reversible else "irreversible")
    return ", ".join(parts)


VOLATILE_PATHS = frozenset({"metadata.deletionTimestamp"})
"""Diff paths whose values the apiserver derives from the clock (a dry-run delete's deletion
time): compared by path only."""


def _comparable(
    changes: collections.abc.Sequence[request.FieldChange],
) -> list[tuple[str, str | None, str | None]]:
    return [
        (c.path, None, None) if c.path in VOLATILE_PATHS else (c.path, c.before, c.after)
        for c in changes
    ]


def target_drift(
    *,
    target: str,
    reviewed_uid: str | None,
    uid: str,
    reviewed_diff: collections.abc.Sequence[request.FieldChange],
    diff: collections.abc.Sequence[request.FieldChange],
    reviewed_radius: request.BlastRadius | None,
    radius: request.BlastRadius,
    resuming: bool,
) -> str | None:
    """Why the change about to be applied is not the one that was reviewed; ``None`` when it is.

    The reviewed object is identified by uid: one deleted and created again under the same name
    (new uid, perhaps a new image) is a different target, whatever its diff. The re-planned diff
    must equal ``status.diff`` and the blast radius ``status.blastRadius``. When ``resuming``
    (the operator was stopped after recording ``Applying``) an empty diff means the change is in
    place already and is accepted.
    """
    if reviewed_uid is None:
        return (
            f"status.targetUid: the request carries no record of which {target} was reviewed "
            "(it was not evaluated by the operator)"
        )
    if uid != reviewed_uid:
        return (
            f"{target} was deleted and created again since the request was reviewed "
            f"(uid {reviewed_uid} then, {uid} now)"
        )
    if resuming and not diff:
        return None
    if _comparable(diff) != _comparable(reviewed_diff):
        return (
            f"{target} changed since the request was reviewed: the reviewed change was "
            f"{render_diff(reviewed_diff)}, it would now be {render_diff(diff)}"
        )
    if reviewed_radius is not None and not resuming and radius != reviewed_radius:
        return (
            f"{target} changed since the request was reviewed: blast radius "
            f"{render_radius(reviewed_radius)} then, {render_radius(radius)} now"
        )
    return None
