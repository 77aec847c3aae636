"""The pure half of the action driver: the patch body, the marker, checks, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from kubernetes.client import exceptions

from agent_authority.actions import base
from agent_authority.kube import errors
from agent_authority.models import grant, request
from agent_authority.policy import blast

A = grant.ActionType
K = request.TargetKind


def action(
    action_type: grant.ActionType,
    kind: request.TargetKind,
    namespace: str | None = "shop",
    **params: Any,
) -> request.Action:
    return request.Action.model_validate(
        {
            "type": action_type,
            "target": {
                "kind": kind,
                "name": "web",
                **({"namespace": namespace} if namespace else {}),
            },
            **({"params": params} if params else {}),
        }
    )


def plan(*changes: base.Change, inverse: request.Inverse | None = None) -> base.Plan:
    act = action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=4)
    return base.Plan(
        action=act,
        facts=blast.TargetFacts(kind=K.DEPLOYMENT, current_replicas=2, current_pods=2),
        radius=request.BlastRadius(pods_affected=2, replicas_delta=2),
        inverse=inverse,
        description="",
        request_uid="req-1",
        target_uid="uid-1",
        changes=changes,
    )


def test_patch_body_guards_the_version_and_carries_the_marker() -> None:
    inverse = request.Inverse(action=action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=2))
    p = plan(base.Change(("spec", "replicas"), before=2, after=4, guarded=True), inverse=inverse)
    live = {"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 2}}

    body = base.patch_body(live, p)

    marker = body["metadata"]["annotations"].pop(base.MARKER)
    assert body == {
        "metadata": {"resourceVersion": "42", "annotations": {}},
        "spec": {"replicas": 4},
    }
    assert json.loads(marker)["request"] == "req-1"
    parsed = base.marker_of({"metadata": {"annotations": {base.MARKER: marker}}})
    assert parsed == base.Marker(request_uid="req-1", action="scale-workload", inverse=inverse)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="absent"),
        pytest.param("not json", id="not-json"),
        pytest.param('{"inverse": null}', id="no-request"),
        pytest.param('{"request": "r", "inverse": {"action": {}}}', id="bad-inverse"),
    ],
)
def test_an_unreadable_marker_is_no_marker(value: str | None) -> None:
    annotations = {} if value is None else {base.MARKER: value}
    assert base.marker_of({"metadata": {"annotations": annotations}}) is None


@pytest.mark.parametrize(
    ("live", "in_place", "moved"),
    [
        pytest.param(2, False, [], id="at-the-planned-start"),
        pytest.param(4, True, [], id="at-the-target"),
        pytest.param(3, False, ["spec.replicas is '3', planned from '2'"], id="moved-elsewhere"),
    ],
)
def test_guarded_change_states(live: int, in_place: bool, moved: list[str]) -> None:
    p = plan(base.Change(("spec", "replicas"), before=2, after=4, guarded=True))
    obj = {"spec": {"replicas": live}}
    assert base.in_place(obj, p) is in_place
    assert base.moved(obj, p) == moved


def test_unguarded_change_never_moves() -> None:
    p = plan(base.Change(("spec", "suspend"), before=False, after=True))
    assert base.moved({"spec": {"suspend": None}}, p) == []


@pytest.mark.parametrize(
    ("act", "reason", "message"),
    [
        pytest.param(
            action(A.CORDON_NODE, K.DEPLOYMENT),
            "TargetKindMismatch",
            "cordon-node acts on Node, not on Deployment",
            id="wrong-kind",
        ),
        pytest.param(
            action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, replicas=3),
            "InvalidParams",
            "params.replicas: not a parameter of rollback-deployment",
            id="foreign-param",
        ),
        pytest.param(
            action(A.SUSPEND_CRONJOB, K.CRON_JOB, namespace=None),
            "NotApplicable",
            "namespace: required for CronJob",
            id="namespaced-kind-without-namespace",
        ),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=1),
            "NotApplicable",
            "scale-workload is not handled here",
            id="other-module",
        ),
    ],
)
def test_check(act: request.Action, reason: str, message: str) -> None:
    with pytest.raises(base.NotApplicable, match=message) as caught:
        base.check(act, {A.CORDON_NODE, A.ROLLBACK_DEPLOYMENT, A.SUSPEND_CRONJOB})
    assert caught.value.reason == reason
    assert caught.value.facts == blast.TargetFacts()


@pytest.mark.parametrize(
    ("raised", "translated", "retryable"),
    [
        pytest.param(errors.NotFound("x", 404), base.TargetNotFound, False, id="404"),
        pytest.param(errors.Conflict("x", 409), base.TargetChanged, True, id="409"),
        pytest.param(errors.Invalid("x", 422), base.Rejected, False, id="422"),
        pytest.param(errors.Forbidden("x", 403), base.Rejected, False, id="403"),
        pytest.param(errors.Unavailable("x", 503), base.Unavailable, True, id="503"),
    ],
)
def test_translating(
    raised: errors.KubeError, translated: type[base.ActionError], retryable: bool
) -> None:
    target = action(A.SCALE_WORKLOAD, K.DEPLOYMENT).target
    with pytest.raises(translated) as caught, base.translating(target):
        raise raised
    assert isinstance(caught.value, base.ActionError)
    assert caught.value.retryable is retryable
    assert caught.value.__cause__ is raised
    assert "Deployment shop/web" in str(caught.value)


def test_workload_facts() -> None:
    deployment = {"spec": {"replicas": 3}, "status": {"replicas": 4}}
    assert base.workload_facts(K.DEPLOYMENT, deployment) == blast.TargetFacts(
        kind=K.DEPLOYMENT, current_replicas=3, current_pods=4
    )
    assert base.workload_facts(K.STATEFUL_SET, {"spec": {}}) == blast.TargetFacts(
        kind=K.STATEFUL_SET, current_replicas=1, current_pods=0
    )
    daemon_set = {"spec": {}, "status": {"currentNumberScheduled": 5}}
    assert base.workload_facts(K.DAEMON_SET, daemon_set) == blast.TargetFacts(
        kind=K.DAEMON_SET, current_pods=5
    )


class _Apps:
    """``read``/``patch_namespaced_deployment`` over one Deployment; the first patches conflict
    when ``conflicts`` says so (another writer got there first)."""

    def __init__(self, stored: dict[str, Any], conflicts: int = 0) -> None:
        self.stored = stored
        self.conflicts = conflicts
        self.reads = 0
        self.patched_at: list[str] = []

    def read_namespaced_deployment(self, *_: Any, **__: Any) -> Any:
        self.reads += 1
        return _Response(self.stored)

    def patch_namespaced_deployment(self, _n: str, _ns: str, body: Any, **_: Any) -> Any:
        self.patched_at.append(body["metadata"]["resourceVersion"])
        if self.conflicts:
            self.conflicts -= 1
            raise exceptions.ApiException(status=409, reason="Conflict")
        return _Response({**self.stored, "spec": {"replicas": body["spec"]["replicas"]}})

    def __getattr__(self, name: str) -> Any:  # the StatefulSet and DaemonSet methods
        return lambda *_, **__: pytest.fail(f"{name} called")


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Other:
    """The API methods of the other kinds (the driver looks them up; none is called)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *_, **__: pytest.fail(f"{name} called")


class _Kube:
    def __init__(self, apps: _Apps) -> None:
        self.apps = apps
        self.core = self.batch = _Other()


def _deployment(version: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"uid": "uid-1", "resourceVersion": version},
        "spec": {"replicas": replicas},
    }


@pytest.mark.parametrize(
    ("conflicts", "reads", "versions"),
    [
        pytest.param(0, 0, ["1"], id="the-plans-read-is-written-against-without-reading-again"),
        pytest.param(1, 1, ["1", "2"], id="a-conflict-reads-the-target-again-before-writing"),
    ],
)
def test_converge_writes_against_the_plans_read_first(
    conflicts: int, reads: int, versions: list[str]
) -> None:
    apps = _Apps(_deployment("2", 2), conflicts=conflicts)
    change = base.Change(("spec", "replicas"), before=2, after=4, guarded=True)
    p = dataclasses.replace(plan(change), live=_deployment("1", 2))

    outcome = asyncio.run(base.converge(_Kube(apps), p, dry_run=False))  # type: ignore[arg-type]

    assert outcome.written
    assert apps.reads == reads
    assert apps.patched_at == versions
