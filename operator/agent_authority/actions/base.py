"""What every action shares: the plan, the module interface, the errors and the apply driver.

The pure helpers on field paths, diffs and merge patches live in :mod:`fields`; this module holds
what reads or writes the target, and the plan those reads and writes serve.

An action module exposes three coroutines and satisfies :class:`ActionModule` as a module::

    plan(kube, action, *, request_uid, requested_at=None) -> Plan
        read the live target, check the action fits it, compute facts, blast radius, the change
        and its inverse. Reads only.
    dry_run(kube, plan) -> list[FieldChange]
        send the real write with ``dryRun=All`` and compare the answer with the live object at the
        paths the plan touches. Nothing is persisted.
    apply(kube, plan) -> str
        perform the write (field manager ``agent-authority``); a message saying what was done.

Idempotency. A patch action is described by :class:`Change` entries (path, value read at plan
time, value to write). :func:`converge` reads the live object first: when every path already holds
its planned value the write is skipped, so applying a plan twice changes nothing the second time.
The write carries the ``resourceVersion`` just read (optimistic concurrency) and a *marker*
annotation, :data:`MARKER`, naming the request: a note for people reading the object, never read
back. Whatever is on the target is the target owner's to write, so neither the inverse nor whether
a request was applied is ever taken from it: the inverse, the target's uid, the reviewed diff and
what a plan resolved (:class:`request.Pinned`, e.g. the revision a rollback goes to) are recorded
in the request's status at evaluation, written by the operator only, and the controller passes
``pinned`` back to :func:`plan` at apply time. A plan made again after a crash then finds its
changes in place (an empty dry-run) instead of, say, rolling back one revision further. Guarded
changes (``Change.guarded``) refuse to write when the live value moved away from the planned one:
an approver approved ``3 -> 6 replicas``, not ``5 -> 6``.

Errors, one tree for the layer (``kube.errors`` are translated by :func:`translating`)::

    ActionError                 .reason (machine code), .retryable, .facts (what was read)
    ├── NotApplicable           the action does not fit the target: kind, params, paused Deployment
    ├── TargetNotFound          the target (or the exact object the request named) does not exist
    ├── RevisionNotFound        rollback-deployment: no ReplicaSet with the revision to go back to
    ├── TargetChanged           the live target is not where the plan left it: plan again
    ├── Rejected                the apiserver refused the write (validation, admission, RBAC)
    └── Unavailable             the apiserver did not answer; retry

``ActionError.facts`` lets a caller still run the policy decision when planning fails: a missing
target has ``facts.kind is None``; a missing revision has ``previous_revision_exists=False``.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import datetime
import json
from typing import Any, Protocol

from agent_authority.actions import fields
from agent_authority.kube import api, errors
from agent_authority.models import grant, request
from agent_authority.policy import blast

FIELD_MANAGER = "agent-authority"
MARKER = "agentauthority.io/last-remediation"
"""Annotation on a patched object: ``{"request": uid, "action": type, "inverse": {...}}``; for
people only, the operator never reads it back (see the module docstring)."""
MERGE_PATCH = "application/merge-patch+json"
CONFLICT_RETRIES = 5

_K = request.TargetKind


class ActionError(Exception):
    """An action could not be planned, dry-run or applied; the message says what and why."""

    reason = "ActionFailed"
    retryable = False

    def __init__(
        self, message: str, *, facts: blast.TargetFacts | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.facts = facts if facts is not None else blast.TargetFacts()
        if reason is not None:
            self.reason = reason


class NotApplicable(ActionError):
    reason = "NotApplicable"


class TargetNotFound(ActionError):
    reason = "TargetNotFound"


class RevisionNotFound(ActionError):
    reason = "RevisionNotFound"


class TargetChanged(ActionError):
    reason = "TargetChanged"
    retryable = True


class Rejected(ActionError):
    reason = "Rejected"


class Unavailable(ActionError):
    reason = "Unavailable"
    retryable = True


@dataclasses.dataclass(frozen=True)
class Change:
    """One field a patch action writes: ``path`` goes from ``before`` to ``after``.

    ``None`` means absent (writing ``None`` removes the field). ``guarded``: apply refuses to
    write when the live value is neither ``before`` nor ``after``.
    """

    path: fields.Path
    before: Any
    after: Any
    guarded: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything decided about one action on one live target, before anything is written."""

    action: request.Action
    facts: blast.TargetFacts
    radius: request.BlastRadius
    inverse: request.Inverse | None
    """What restores the state read at plan time; ``None`` for irreversible actions."""
    description: str
    request_uid: str
    target_uid: str
    """``metadata.uid`` of the object planned on: a recreated object is not the same target."""
    changes: tuple[Change, ...] = ()
    pinned: request.Pinned | None = None
    """What this plan resolved that a later plan of the same request must reuse (recorded in
    the request's status and passed back to :func:`plan` at apply time)."""
    live: api.Json | None = dataclasses.field(default=None, compare=False, repr=False)
    """The target as the plan read it: :func:`converge` writes against it first instead of
    reading it again; its ``resourceVersion`` guards the write, so a target changed meanwhile
    costs a conflict and a fresh read, never a write on a stale view."""


class ActionModule(Protocol):
    """The interface of an action module (modules implement it with module-level names)."""

    TYPES: frozenset[grant.ActionType]
    """The action types the module performs."""

    async def plan(
        self,
        kube: api.Kube,
        action: request.Action,
        *,
        request_uid: str,
        requested_at: datetime.datetime | None = None,
        pinned: request.Pinned | None = None,
    ) -> Plan: ...

    async def dry_run(self, kube: api.Kube, plan: Plan) -> list[request.FieldChange]: ...

    async def apply(self, kube: api.Kube, plan: Plan) -> str: ...


@dataclasses.dataclass(frozen=True)
class Marker:
    """The parsed :data:`MARKER` annotation."""

    request_uid: str
    action: str
    inverse: request.Inverse | None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What :func:`converge` did: the field changes (dry-run or real) and whether it wrote."""

    written: bool
    changes: list[request.FieldChange]
    obj: api.Json
    """The object after the write (the dry-run answer or what was stored), or as read."""


# --- checks and reads ---------------------------------------------------------------------------


def check(action: request.Action, types: collections.abc.Set[grant.ActionType]) -> None:
    """Raise :class:`NotApplicable` when ``action`` is not for this module, kind or params."""
    if action.type not in types:
        raise NotApplicable(f"spec.action.type: {action.type} is not handled here")
    if (problem := blast.target_kind_problem(action)) is not None:
        raise NotApplicable(problem, reason="TargetKindMismatch")
    if (problem := blast.params_problem(action)) is not None:
        raise NotApplicable(problem, reason="InvalidParams")
    namespaced = action.target.kind is not _K.NODE
    if namespaced != (action.target.namespace is not None):
        need = "required" if namespaced else "forbidden"
        raise NotApplicable(f"spec.action.target.namespace: {need} for {action.target.kind}")


def label(target: request.Target) -> str:
    """``Deployment shop/web``, ``Node worker-1``."""
    where = f"{target.namespace}/" if target.namespace else ""
    return f"{target.kind} {where}{target.name}"


@contextlib.contextmanager
def translating(target: request.Target) -> collections.abc.Iterator[None]:
    """Translate ``kube.errors`` raised inside the block into this layer's :class:`ActionError`."""
    try:
        yield
    except errors.NotFound as e:
        raise TargetNotFound(f"{label(target)} does not exist") from e
    except errors.Conflict as e:
        raise TargetChanged(f"{label(target)} changed while acting on it: {e}") from e
    except (errors.Invalid, errors.Forbidden) as e:
        raise Rejected(f"the apiserver refused the change to {label(target)}: {e}") from e
    except errors.KubeError as e:
        raise Unavailable(f"the apiserver did not answer for {label(target)}: {e}") from e


async def read(kube: api.Kube, target: request.Target) -> api.Json:
    """The live target (``kube.errors.NotFound`` when it does not exist)."""
    if target.kind is _K.NODE:
        return await api.call(kube.core.read_node, target.name)
    read_fn = {
        _K.DEPLOYMENT: kube.apps.read_namespaced_deployment,
        _K.STATEFUL_SET: kube.apps.read_namespaced_stateful_set,
        _K.DAEMON_SET: kube.apps.read_namespaced_daemon_set,
        _K.POD: kube.core.read_namespaced_pod,
        _K.CRON_JOB: kube.batch.read_namespaced_cron_job,
    }[target.kind]
    return await api.call(read_fn, target.name, target.namespace)


async def merge_patch(
    kube: api.Kube, target: request.Target, body: api.Json, *, dry_run: bool
) -> api.Json:
    """A JSON merge patch (RFC 7386) of the target, as field manager ``agent-authority``."""
    options: dict[str, Any] = {"field_manager": FIELD_MANAGER, "_content_type": MERGE_PATCH}
    if dry_run:
        options["dry_run"] = "All"
    if target.kind is _K.NODE:
        return await api.call(kube.core.patch_node, target.name, body, **options)
    patch_fn = {
        _K.DEPLOYMENT: kube.apps.patch_namespaced_deployment,
        _K.STATEFUL_SET: kube.apps.patch_namespaced_stateful_set,
        _K.DAEMON_SET: kube.apps.patch_namespaced_daemon_set,
        _K.CRON_JOB: kube.batch.patch_namespaced_cron_job,
    }[target.kind]
    return await api.call(patch_fn, target.name, target.namespace, body, **options)


def workload_facts(kind: request.TargetKind, live: api.Json) -> blast.TargetFacts:
    """Facts of a Deployment, StatefulSet or DaemonSet: declared replicas and pods running now."""
    spec, status = live.get("spec") or {}, live.get("status") or {}
    if kind is _K.DAEMON_SET:
        return blast.TargetFacts(
            kind=kind, current_pods=int(status.get("currentNumberScheduled", 0))
        )
    return blast.TargetFacts(
        kind=kind,
        current_replicas=int(spec.get("replicas", 1)),
        current_pods=int(status.get("replicas", 0)),
    )


def refuse_paused(action: request.Action, live: api.Json, facts: blast.TargetFacts) -> None:
    """``kubectl rollout`` refuses to restart or undo a paused Deployment; so do we."""
    if action.target.kind is _K.DEPLOYMENT and (live.get("spec") or {}).get("paused"):
        raise NotApplicable(
            f"{label(action.target)} is paused: a template change would not roll out until it "
            "is resumed (kubectl rollout resume)",
            facts=facts,
            reason="TargetPaused",
        )


# --- the marker ---------------------------------------------------------------------------------


def marker_of(obj: api.Json) -> Marker | None:
    """The :data:`MARKER` annotation of ``obj``; ``None`` when absent or unreadable."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(MARKER)
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
        if not isinstance(data, dict) or not isinstance(data.get("request"), str):
            return None
        inverse = data.get("inverse")
        return Marker(
            request_uid=data["request"],
            action=str(data.get("action", "")),
            inverse=None if inverse is None else request.Inverse.model_validate(inverse),
        )
    except ValueError:  # json.JSONDecodeError and pydantic.ValidationError are ValueErrors
        return None


def marker_text(plan: Plan) -> str:
    inverse = plan.inverse.to_api() if plan.inverse is not None else None
    data = {"request": plan.request_uid, "action": str(plan.action.type), "inverse": inverse}
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


# --- the patch -----------------------------------------------------------------------------------


def patch_body(live: api.Json, plan: Plan) -> api.Json:
    """The merge patch from ``live`` to the plan: changes, marker, ``resourceVersion`` guard."""
    body: api.Json = {}
    fields.put(body, ("metadata", "resourceVersion"), live["metadata"]["resourceVersion"])
    fields.put(body, ("metadata", "annotations", MARKER), marker_text(plan))
    for change in plan.changes:
        patch = fields.merge_patch_between(fields.get(live, change.path), change.after)
        fields.put(body, change.path, patch)
    return body


def in_place(live: api.Json, plan: Plan) -> bool:
    """Whether every change of ``plan`` already holds on ``live``."""
    return all(fields.get(live, c.path) == c.after for c in plan.changes)


def moved(live: api.Json, plan: Plan) -> list[str]:
    """Guarded paths whose live value is neither the planned starting point nor the target."""
    return [
        f"{fields.render(c.path)} is {fields.text(fields.get(live, c.path))!r}, "
        f"planned from {fields.text(c.before)!r}"
        for c in plan.changes
        if c.guarded and fields.get(live, c.path) not in (c.before, c.after)
    ]


# --- the driver ---------------------------------------------------------------------------------


async def converge(kube: api.Kube, plan: Plan, *, dry_run: bool) -> Outcome:
    """Bring the target to the plan's changes with one merge patch (or, dry, show what would).

    Reads the target (or takes ``plan.live`` the first time); does nothing when the changes are
    in place; refuses (``TargetChanged``) when the object was recreated or a guarded field
    moved; else patches with the ``resourceVersion`` read and retries on a write conflict.
    """
    target = plan.action.target
    known = plan.live
    with translating(target):
        for _ in range(CONFLICT_RETRIES):
            live = known if known is not None else await read(kube, target)
            known = None
            if live["metadata"]["uid"] != plan.target_uid:
                raise TargetChanged(
                    f"{label(target)} was deleted and created again since it was planned "
                    f"(uid {plan.target_uid} is now {live['metadata']['uid']}): plan again"
                )
            if in_place(live, plan):
                return Outcome(written=False, changes=[], obj=live)
            if problems := moved(live, plan):
                raise TargetChanged(
                    f"{label(target)} changed since it was planned ({'; '.join(problems)}): "
                    "plan again"
                )
            try:
                result = await merge_patch(kube, target, patch_body(live, plan), dry_run=dry_run)
            except errors.Conflict:
                continue
            paths = [c.path for c in plan.changes]
            return Outcome(
                written=True, changes=fields.field_changes(live, result, paths), obj=result
            )
    raise TargetChanged(
        f"{label(target)} kept changing during {CONFLICT_RETRIES} attempts to write it: retry"
    )
