"""Every remediation action on a real apiserver: plan, dry-run, apply, apply again, inverse.

For each action: the plan reads the right facts and blast radius; the dry-run shows the diff and
leaves the live object alone; apply changes it (as field manager ``agent-authority``); applying
the same plan again, or planning the same request again after it was applied, changes nothing;
and planning and applying the recorded inverse restores the state read at plan time.
"""

from __future__ import annotations

import asyncio
import collections.abc
import datetime
import time
import uuid
from typing import Any, TypeVar

import pytest
from kubernetes import client

from agent_authority.actions import base, registry
from agent_authority.kube import api, errors
from agent_authority.models import grant, request

A = grant.ActionType
K = request.TargetKind
T = TypeVar("T")
RESTARTED_AT = "spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]"


# --- helpers ------------------------------------------------------------------------------------


def run(coro: collections.abc.Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def action(
    action_type: grant.ActionType,
    kind: request.TargetKind,
    name: str,
    namespace: str | None = None,
    **params: object,
) -> request.Action:
    return request.Action.model_validate(
        {
            "type": action_type,
            "target": {
                "kind": kind,
                "name": name,
                **({"namespace": namespace} if namespace else {}),
            },
            **({"params": params} if params else {}),
        }
    )


def plan(kube: api.Kube, act: request.Action, uid: str | None = None, **kw: Any) -> base.Plan:
    module = registry.get(act.type)
    return run(module.plan(kube, act, request_uid=uid or str(uuid.uuid4()), **kw))


def dry_run(kube: api.Kube, p: base.Plan) -> list[request.FieldChange]:
    return run(registry.get(p.action.type).dry_run(kube, p))


def apply(kube: api.Kube, p: base.Plan) -> str:
    return run(registry.get(p.action.type).apply(kube, p))


def read(kube: api.Kube, target: request.Target) -> api.Json:
    return run(base.read(kube, target))


def eventually(fn: collections.abc.Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def change(path: str, before: str | None, after: str | None) -> request.FieldChange:
    return request.FieldChange(path=path, before=before, after=after)


def pod_template(image: str, **labels: str) -> api.Json:
    return {
        "metadata": {"labels": {"app": "web", **labels}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def create_workload(kube: api.Kube, kind: request.TargetKind, namespace: str, **spec: Any) -> None:
    body = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template("nginx:1")},
    }
    body["spec"].update(spec)
    create = {
        K.DEPLOYMENT: kube.apps.create_namespaced_deployment,
        K.STATEFUL_SET: kube.apps.create_namespaced_stateful_set,
        K.DAEMON_SET: kube.apps.create_namespaced_daemon_set,
    }[kind]
    if kind is K.STATEFUL_SET:  # pods never become Ready here: create them all at once
        body["spec"] |= {"serviceName": "web", "podManagementPolicy": "Parallel"}
    api.sync(create, namespace, body)


def settled(kube: api.Kube, target: request.Target, pods: int) -> api.Json:
    """The workload once its controller reports ``pods`` pods for the current generation."""

    def check() -> api.Json | None:
        live = read(kube, target)
        status = live.get("status") or {}
        current = status.get("observedGeneration") == live["metadata"]["generation"]
        count = status.get("replicas", status.get("currentNumberScheduled", 0))
        return live if current and count == pods else None

    return eventually(check, f"{base.label(target)} reports {pods} pods")


def wait_for_service_account(kube: api.Kube, namespace: str) -> None:
    def exists() -> bool:
        try:
            api.sync(kube.core.read_namespaced_service_account, "default", namespace)
        except errors.NotFound:
            return False
        return True

    eventually(exists, f"ServiceAccount {namespace}/default")


def revisions(kube: api.Kube, namespace: str) -> dict[str, str]:
    """ReplicaSet revision -> image."""
    found = api.sync(kube.apps.list_namespaced_replica_set, namespace)["items"]
    return {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["template"][
            "spec"
        ]["containers"][0]["image"]
        for rs in found
    }


@pytest.fixture
def kube(admin: client.ApiClient) -> api.Kube:
    return api.Kube(admin)


@pytest.fixture
def node(kube: api.Kube) -> collections.abc.Iterator[str]:
    name = f"node-{uuid.uuid4().hex[:8]}"
    api.sync(kube.core.create_node, {"metadata": {"name": name}})
    yield name
    api.sync(kube.core.delete_node, name)


# --- scale-workload -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [K.DEPLOYMENT, K.STATEFUL_SET])
def test_scale_plans_dry_runs_applies_once_and_scales_back(
    kube: api.Kube, namespace: str, kind: request.TargetKind
) -> None:
    create_workload(kube, kind, namespace, replicas=2)
    act = action(A.SCALE_WORKLOAD, kind, "web", namespace, replicas=5)
    settled(kube, act.target, 2)
    uid = str(uuid.uuid4())

    p = plan(kube, act, uid)
    assert (p.facts.kind, p.facts.current_replicas, p.facts.current_pods) == (kind, 2, 2)
    assert p.radius == request.BlastRadius(pods_affected=3, replicas_delta=3, reversible=True)
    assert p.inverse is not None
    assert p.inverse.action.params == request.ActionParams(replicas=2)
    assert "scales from 2 to 5 replicas" in p.description

    generation = read(kube, act.target)["metadata"]["generation"]
    assert dry_run(kube, p) == [change("spec.replicas", "2", "5")]
    assert read(kube, act.target)["metadata"]["generation"] == generation

    assert apply(kube, p) == f"{kind} {namespace}/web: scaled from 2 to 5 replicas"
    live = read(kube, act.target)
    assert live["spec"]["replicas"] == 5
    assert "agent-authority" in {m["manager"] for m in live["metadata"]["managedFields"]}
    assert "nothing to do" in apply(kube, p)
    assert read(kube, act.target)["metadata"]["generation"] == live["metadata"]["generation"]

    again = plan(kube, act, uid)  # the controller crashed after apply and plans again
    assert dry_run(kube, again) == []  # in place; the inverse is the request status' record

    back = plan(kube, p.inverse.action)
    assert dry_run(kube, back) == [change("spec.replicas", "5", "2")]
    apply(kube, back)
    assert read(kube, act.target)["spec"]["replicas"] == 2


def test_scale_refuses_when_replicas_moved_after_planning(kube: api.Kube, namespace: str) -> None:
    create_workload(kube, K.DEPLOYMENT, namespace, replicas=2)
    act = action(A.SCALE_WORKLOAD, K.DEPLOYMENT, "web", namespace, replicas=4)
    p = plan(kube, act)
    api.sync(
        kube.apps.patch_namespaced_deployment,
        "web",
        namespace,
        {"spec": {"replicas": 1}},
        _content_type=base.MERGE_PATCH,
    )

    with pytest.raises(base.TargetChanged, match=r"spec\.replicas is '1', planned from '2'"):
        apply(kube, p)
    assert read(kube, act.target)["spec"]["replicas"] == 1


# --- restart-workload ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "spec", "pods"),
    [
        pytest.param(K.DEPLOYMENT, {"replicas": 2}, 2, id="deployment"),
        pytest.param(K.STATEFUL_SET, {"replicas": 2}, 2, id="statefulset"),
        pytest.param(K.DAEMON_SET, {}, 0, id="daemonset-on-no-nodes"),
    ],
)
def test_restart_sets_restarted_at_once_and_records_what_undoes_it(
    kube: api.Kube, namespace: str, kind: request.TargetKind, spec: api.Json, pods: int
) -> None:
    create_workload(kube, kind, namespace, **spec)
    act = action(A.RESTART_WORKLOAD, kind, "web", namespace)
    settled(kube, act.target, pods)
    uid = str(uuid.uuid4())
    requested = datetime.datetime.now(datetime.UTC)

    p = plan(kube, act, uid, requested_at=requested)
    assert p.facts.kind is kind
    assert p.facts.current_pods == pods
    assert p.radius == request.BlastRadius(pods_affected=pods, reversible=False)
    if kind is K.DEPLOYMENT:
        # Undone by rolling back to the revision before the restart (pods roll once more).
        assert p.inverse is not None
        assert p.inverse.action.type is A.ROLLBACK_DEPLOYMENT
        assert p.inverse.action.params == request.ActionParams(to_revision=1)
    else:
        assert p.inverse is None  # no revision history this catalog can roll back to

    diff = dry_run(kube, p)
    stamp = p.changes[0].after
    assert diff == [change(RESTARTED_AT, None, stamp)]
    assert "annotations" not in read(kube, act.target)["spec"]["template"]["metadata"]

    assert "rollout restart started" in apply(kube, p)
    live = read(kube, act.target)
    annotations = live["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/restartedAt"] == stamp
    assert "nothing to do" in apply(kube, p)

    again = plan(kube, act, uid, requested_at=requested)  # the same request: the same stamp
    assert again.changes[0].after == p.changes[0].after
    assert dry_run(kube, again) == []
    assert "nothing to do" in apply(kube, again)
    assert read(kube, act.target)["metadata"]["generation"] == live["metadata"]["generation"]
    if kind is K.DEPLOYMENT:
        eventually(lambda: len(revisions(kube, namespace)) == 2, "a second ReplicaSet rolls out")
        assert p.inverse is not None
        back = plan(kube, p.inverse.action)
        apply(kube, back)
        template = read(kube, act.target)["spec"]["template"]["metadata"]
        assert "kubectl.kubernetes.io/restartedAt" not in (template.get("annotations") or {})


def test_restart_refuses_a_paused_deployment(kube: api.Kube, namespace: str) -> None:
    create_workload(kube, K.DEPLOYMENT, namespace, replicas=1, paused=True)

    with pytest.raises(base.NotApplicable, match="is paused") as caught:
        plan(kube, action(A.RESTART_WORKLOAD, K.DEPLOYMENT, "web", namespace))
    assert caught.value.reason == "TargetPaused"


# --- rollback-deployment ------------------------------------------------------------------------


def two_revisions(kube: api.Kube, namespace: str) -> api.Json:
    """Deployment ``web``: revision 1 runs nginx:1, revision 2 nginx:2 with a ``track`` label.

    ``Recreate``: pods never become Ready here, so a rolling update would never finish.
    """
    create_workload(kube, K.DEPLOYMENT, namespace, replicas=2, strategy={"type": "Recreate"})
    eventually(lambda: revisions(kube, namespace) == {"1": "nginx:1"}, "revision 1")
    api.sync(
        kube.apps.patch_namespaced_deployment,
        "web",
        namespace,
        {"spec": {"template": pod_template("nginx:2", track="canary")}},
        _content_type=base.MERGE_PATCH,
    )
    eventually(lambda: revisions(kube, namespace) == {"1": "nginx:1", "2": "nginx:2"}, "rev 2")
    target = action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace).target
    return settled(kube, target, 2)


def test_rollback_goes_to_the_previous_revision_once_and_forward_again(
    kube: api.Kube, namespace: str
) -> None:
    before = two_revisions(kube, namespace)
    act = action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace)
    uid = str(uuid.uuid4())

    p = plan(kube, act, uid)
    assert p.facts.previous_revision_exists is True
    assert (p.facts.current_replicas, p.facts.current_pods) == (2, 2)
    assert p.radius == request.BlastRadius(pods_affected=2, reversible=True)
    assert p.inverse is not None
    assert p.inverse.action.params == request.ActionParams(to_revision=2)
    assert "from revision 2 to revision 1" in p.description

    assert dry_run(kube, p) == [
        change("spec.template.metadata.labels.track", "canary", None),
        change("spec.template.spec.containers[name=app].image", "nginx:2", "nginx:1"),
    ]
    assert read(kube, act.target)["spec"]["template"] == before["spec"]["template"]

    assert "roll back from revision 2 to revision 1" in apply(kube, p)
    live = read(kube, act.target)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert live["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert "nothing to do" in apply(kube, p)
    # The controller reuses revision 1's ReplicaSet and renumbers it 3; 2 keeps its number.
    eventually(lambda: revisions(kube, namespace) == {"2": "nginx:2", "3": "nginx:1"}, "rev 3")

    assert p.pinned is not None
    assert p.pinned.revision == 1
    again = plan(kube, act, uid, pinned=p.pinned)  # pinned: revision 1's ReplicaSet, now "3"
    assert dry_run(kube, again) == []
    assert "on the template of revision 1 already" in again.description

    forward = plan(kube, p.inverse.action)
    assert "from revision 3 to revision 2" in forward.description
    apply(kube, forward)
    assert read(kube, act.target)["spec"]["template"] == before["spec"]["template"]
    eventually(lambda: revisions(kube, namespace) == {"3": "nginx:1", "4": "nginx:2"}, "rev 4")


def test_a_pinned_rollback_goes_where_it_was_reviewed_after_a_new_rollout(
    kube: api.Kube, namespace: str
) -> None:
    """Reviewed as "back to nginx:1"; a rollout of nginx:3 lands before the apply. Re-resolving
    "the previous revision" would now mean nginx:2; the pinned plan still means nginx:1."""
    two_revisions(kube, namespace)
    act = action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace)
    reviewed = plan(kube, act)
    assert reviewed.pinned is not None
    assert reviewed.pinned.revision == 1
    api.sync(
        kube.apps.patch_namespaced_deployment,
        "web",
        namespace,
        {"spec": {"template": pod_template("nginx:3", track="canary")}},
        _content_type=base.MERGE_PATCH,
    )
    eventually(lambda: revisions(kube, namespace).get("3") == "nginx:3", "revision 3")

    assert "to revision 2" in plan(kube, act).description  # what re-resolving would do
    pinned = plan(kube, act, pinned=reviewed.pinned)
    assert dry_run(kube, pinned) == [
        change("spec.template.metadata.labels.track", "canary", None),
        change("spec.template.spec.containers[name=app].image", "nginx:3", "nginx:1"),
    ]
    apply(kube, pinned)
    assert read(kube, act.target)["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "nginx:1"
    )


def test_a_pinned_revision_whose_replica_set_is_gone_is_revision_not_found(
    kube: api.Kube, namespace: str
) -> None:
    two_revisions(kube, namespace)
    act = action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace)
    gone = request.Pinned(revision=1, replica_set_uid=str(uuid.uuid4()))
    with pytest.raises(base.RevisionNotFound, match="that was reviewed for this request"):
        plan(kube, act, pinned=gone)


def test_rollback_to_an_explicit_revision(kube: api.Kube, namespace: str) -> None:
    two_revisions(kube, namespace)
    p = plan(kube, action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace, toRevision=1))
    apply(kube, p)
    image = read(kube, p.action.target)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "nginx:1"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({}, "has no previous revision to roll back to", id="only-one-revision"),
        pytest.param({"toRevision": 7}, r"has no revision 7 .*\(revisions: 1\)", id="unknown"),
    ],
)
def test_rollback_without_the_revision_is_revision_not_found(
    kube: api.Kube, namespace: str, params: dict[str, int], message: str
) -> None:
    create_workload(kube, K.DEPLOYMENT, namespace, replicas=1)
    eventually(lambda: revisions(kube, namespace) == {"1": "nginx:1"}, "revision 1")

    act = action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace, **params)
    with pytest.raises(base.RevisionNotFound, match=message) as caught:
        plan(kube, act)
    assert caught.value.facts.kind is K.DEPLOYMENT
    assert caught.value.facts.previous_revision_exists is False


def test_rollback_to_the_current_revision_is_not_applicable(kube: api.Kube, namespace: str) -> None:
    two_revisions(kube, namespace)
    act = action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, "web", namespace, toRevision=2)

    with pytest.raises(base.NotApplicable, match="is at revision 2 already"):
        plan(kube, act)


# --- delete-pod ---------------------------------------------------------------------------------


def create_pod(kube: api.Kube, namespace: str, name: str = "db-0", **spec: Any) -> api.Json:
    wait_for_service_account(kube, namespace)
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    body["spec"].update(spec)
    return api.sync(kube.core.create_namespaced_pod, namespace, body)


def test_delete_pod_deletes_exactly_the_planned_pod_once(kube: api.Kube, namespace: str) -> None:
    pod = create_pod(kube, namespace)
    act = action(A.DELETE_POD, K.POD, "db-0", namespace)

    p = plan(kube, act)
    assert p.facts.kind is K.POD
    assert p.radius == request.BlastRadius(pods_affected=1, reversible=False)
    assert p.inverse is None
    assert "no controller will replace it" in p.description

    diff = dry_run(kube, p)
    assert [c.path for c in diff] == [
        "metadata.deletionTimestamp",
        "metadata.deletionGracePeriodSeconds",
    ]
    assert diff[0].before is None
    assert diff[0].after
    assert diff[1] == change("metadata.deletionGracePeriodSeconds", None, "0")
    live = read(kube, act.target)
    assert live["metadata"]["uid"] == pod["metadata"]["uid"]
    assert "deletionTimestamp" not in live["metadata"]

    assert apply(kube, p) == f"Pod {namespace}/db-0 (uid {pod['metadata']['uid']}) deleted"
    with pytest.raises(errors.NotFound):
        read(kube, act.target)
    assert "gone already" in apply(kube, p)

    replacement = create_pod(kube, namespace)  # same name, another uid: not the planned pod
    assert dry_run(kube, p) == []
    assert "gone already" in apply(kube, p)
    assert read(kube, act.target)["metadata"]["uid"] == replacement["metadata"]["uid"]


def test_delete_pod_leaves_a_pod_created_after_the_request(kube: api.Kube, namespace: str) -> None:
    create_pod(kube, namespace)
    requested_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)

    with pytest.raises(base.TargetNotFound, match="after the request"):
        plan(kube, action(A.DELETE_POD, K.POD, "db-0", namespace), requested_at=requested_at)


# --- cordon-node / uncordon-node ----------------------------------------------------------------


def test_cordon_once_and_uncordon_back(kube: api.Kube, namespace: str, node: str) -> None:
    create_pod(kube, namespace, nodeName=node)
    act = action(A.CORDON_NODE, K.NODE, node)
    uid = str(uuid.uuid4())

    p = plan(kube, act, uid)
    assert (p.facts.kind, p.facts.pods_on_node) == (K.NODE, 1)
    assert p.radius == request.BlastRadius(pods_affected=0, reversible=True)
    assert p.inverse is not None
    assert p.inverse.action.type is A.UNCORDON_NODE
    assert "1 pods keep running" in p.description

    assert dry_run(kube, p) == [change("spec.unschedulable", None, "true")]
    assert "unschedulable" not in read(kube, act.target)["spec"]

    assert "cordoned" in apply(kube, p)
    live = read(kube, act.target)
    assert live["spec"]["unschedulable"] is True
    assert "nothing to do" in apply(kube, p)
    assert dry_run(kube, plan(kube, act, uid)) == []  # planned again after the apply: in place

    back = plan(kube, p.inverse.action)
    assert dry_run(kube, back) == [change("spec.unschedulable", "true", None)]
    apply(kube, back)
    assert "unschedulable" not in read(kube, act.target)["spec"]


def test_uncordon_of_a_schedulable_node_changes_nothing(kube: api.Kube, node: str) -> None:
    p = plan(kube, action(A.UNCORDON_NODE, K.NODE, node))
    assert p.inverse is not None
    assert p.inverse.action.type is A.UNCORDON_NODE  # it was schedulable: stays schedulable
    assert dry_run(kube, p) == []
    assert "nothing to do" in apply(kube, p)


# --- suspend-cronjob ----------------------------------------------------------------------------


def create_cronjob(kube: api.Kube, namespace: str) -> None:
    job = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "job", "image": "x"}],
            }
        }
    }
    api.sync(
        kube.batch.create_namespaced_cron_job,
        namespace,
        {
            "metadata": {"name": "report"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}},
        },
    )


def test_suspend_once_and_resume_back(kube: api.Kube, namespace: str) -> None:
    create_cronjob(kube, namespace)
    act = action(A.SUSPEND_CRONJOB, K.CRON_JOB, "report", namespace)
    uid = str(uuid.uuid4())

    p = plan(kube, act, uid)
    assert (p.facts.kind, p.facts.cronjob_suspended) == (K.CRON_JOB, False)
    assert p.radius == request.BlastRadius(pods_affected=0, reversible=True)
    assert p.inverse is not None
    assert p.inverse.action.params == request.ActionParams(suspend=False)

    assert dry_run(kube, p) == [change("spec.suspend", "false", "true")]
    assert read(kube, act.target)["spec"]["suspend"] is False

    assert "suspended" in apply(kube, p)
    assert read(kube, act.target)["spec"]["suspend"] is True
    assert "nothing to do" in apply(kube, p)
    again = plan(kube, act, uid)
    assert dry_run(kube, again) == []

    back = plan(kube, p.inverse.action)
    assert dry_run(kube, back) == [change("spec.suspend", "true", "false")]
    assert "resumed" in apply(kube, back)
    assert read(kube, act.target)["spec"]["suspend"] is False


def test_apply_refuses_a_target_recreated_after_planning(kube: api.Kube, namespace: str) -> None:
    create_cronjob(kube, namespace)
    p = plan(kube, action(A.SUSPEND_CRONJOB, K.CRON_JOB, "report", namespace))
    api.sync(kube.batch.delete_namespaced_cron_job, "report", namespace)
    eventually(lambda: not _exists(kube, p.action.target), "the CronJob is gone")
    create_cronjob(kube, namespace)

    with pytest.raises(base.TargetChanged, match="deleted and created again"):
        apply(kube, p)


def _exists(kube: api.Kube, target: request.Target) -> bool:
    try:
        read(kube, target)
    except errors.NotFound:
        return False
    return True


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action_type", "kind", "params"),
    [
        pytest.param(A.RESTART_WORKLOAD, K.DAEMON_SET, {}, id="restart"),
        pytest.param(A.SCALE_WORKLOAD, K.STATEFUL_SET, {"replicas": 1}, id="scale"),
        pytest.param(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, {}, id="rollback"),
        pytest.param(A.DELETE_POD, K.POD, {}, id="delete-pod"),
        pytest.param(A.CORDON_NODE, K.NODE, {}, id="cordon"),
        pytest.param(A.UNCORDON_NODE, K.NODE, {}, id="uncordon"),
        pytest.param(A.SUSPEND_CRONJOB, K.CRON_JOB, {}, id="suspend"),
    ],
)
def test_a_missing_target_is_target_not_found_with_empty_facts(
    kube: api.Kube,
    namespace: str,
    action_type: grant.ActionType,
    kind: request.TargetKind,
    params: dict[str, int],
) -> None:
    ns = None if kind is K.NODE else namespace
    act = action(action_type, kind, "missing", ns, **params)

    with pytest.raises(base.TargetNotFound, match=f"{kind} .*missing does not exist") as caught:
        plan(kube, act)
    assert caught.value.facts.kind is None
    assert caught.value.reason == "TargetNotFound"


@pytest.mark.parametrize(
    ("act", "reason", "message"),
    [
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DAEMON_SET, "web", "shop", replicas=3),
            "TargetKindMismatch",
            "scale-workload acts on Deployment or StatefulSet, not on DaemonSet",
            id="scale-a-daemonset",
        ),
        pytest.param(
            action(A.DELETE_POD, K.DEPLOYMENT, "web", "shop"),
            "TargetKindMismatch",
            "delete-pod acts on Pod, not on Deployment",
            id="delete-pod-on-a-deployment",
        ),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, "web", "shop"),
            "InvalidParams",
            "scale-workload needs the desired replica count",
            id="scale-without-replicas",
        ),
        pytest.param(
            action(A.SUSPEND_CRONJOB, K.CRON_JOB, "report", "shop", replicas=2),
            "InvalidParams",
            "params.replicas: not a parameter of suspend-cronjob",
            id="suspend-with-replicas",
        ),
    ],
)
def test_an_action_that_does_not_fit_its_target_is_not_applicable(
    kube: api.Kube, act: request.Action, reason: str, message: str
) -> None:
    with pytest.raises(base.NotApplicable, match=message) as caught:
        plan(kube, act)
    assert caught.value.reason == reason
