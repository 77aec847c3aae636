"""Reversibility, target kinds, params and blast radius of each action type."""

from __future__ import annotations

import pytest

from agent_authority.models import grant, request
from agent_authority.policy import blast

A = grant.ActionType
K = request.TargetKind


def action(
    action_type: grant.ActionType,
    kind: request.TargetKind,
    name: str = "web",
    namespace: str | None = "shop",
    **params: object,
) -> request.Action:
    """An action on ``kind`` ``namespace/name``; Nodes never carry a namespace."""
    return request.Action.model_validate(
        {
            "type": action_type,
            "target": {
                "kind": kind,
                "name": name,
                **({"namespace": namespace} if kind is not K.NODE and namespace else {}),
            },
            **({"params": params} if params else {}),
        }
    )


@pytest.mark.parametrize(
    ("action_type", "reversible", "risk"),
    [
        pytest.param(A.RESTART_WORKLOAD, False, "irreversible", id="restart-kills-every-pod"),
        pytest.param(A.SCALE_WORKLOAD, True, "reversible", id="scale-restores-replica-count"),
        pytest.param(A.ROLLBACK_DEPLOYMENT, True, "reversible", id="rollback-rolls-forward-again"),
        pytest.param(A.DELETE_POD, False, "irreversible", id="deleted-pod-is-gone"),
        pytest.param(A.CORDON_NODE, True, "reversible", id="cordon-undone-by-uncordon"),
        pytest.param(A.UNCORDON_NODE, True, "reversible", id="uncordon-undone-by-cordon"),
        pytest.param(A.SUSPEND_CRONJOB, True, "reversible", id="suspend-undone-by-resume"),
    ],
)
def test_reversibility(action_type: grant.ActionType, reversible: bool, risk: str) -> None:
    assert blast.REVERSIBLE[action_type] is reversible
    assert blast.is_reversible(action_type) is reversible
    assert blast.risk_class(action_type) == risk


def test_catalog_covers_every_action_type() -> None:
    assert set(blast.REVERSIBLE) == set(A)
    assert set(blast.ALLOWED_TARGET_KINDS) == set(A)


@pytest.mark.parametrize(
    ("act", "problem"),
    [
        pytest.param(action(A.RESTART_WORKLOAD, K.DEPLOYMENT), None, id="restart-deployment-fits"),
        pytest.param(action(A.RESTART_WORKLOAD, K.STATEFUL_SET), None, id="restart-sts-fits"),
        pytest.param(action(A.RESTART_WORKLOAD, K.DAEMON_SET), None, id="restart-daemonset-fits"),
        pytest.param(
            action(A.RESTART_WORKLOAD, K.POD),
            "spec.action.target.kind: restart-workload acts on DaemonSet, Deployment or "
            "StatefulSet, not on Pod",
            id="restart-pod-refused-lists-workload-kinds",
        ),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DAEMON_SET, replicas=2),
            "spec.action.target.kind: scale-workload acts on Deployment or StatefulSet, "
            "not on DaemonSet",
            id="scale-daemonset-refused-daemonsets-have-no-replicas",
        ),
        pytest.param(
            action(A.ROLLBACK_DEPLOYMENT, K.STATEFUL_SET),
            "spec.action.target.kind: rollback-deployment acts on Deployment, not on StatefulSet",
            id="rollback-statefulset-refused",
        ),
        pytest.param(action(A.DELETE_POD, K.POD), None, id="delete-pod-fits-pod"),
        pytest.param(action(A.CORDON_NODE, K.NODE), None, id="cordon-fits-node"),
        pytest.param(
            action(A.UNCORDON_NODE, K.DEPLOYMENT),
            "spec.action.target.kind: uncordon-node acts on Node, not on Deployment",
            id="uncordon-deployment-refused",
        ),
        pytest.param(action(A.SUSPEND_CRONJOB, K.CRON_JOB), None, id="suspend-fits-cronjob"),
    ],
)
def test_target_kind_problem(act: request.Action, problem: str | None) -> None:
    assert blast.target_kind_problem(act) == problem


@pytest.mark.parametrize(
    ("act", "problem"),
    [
        pytest.param(action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=4), None, id="scale-with-n"),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT),
            "spec.action.params.replicas: scale-workload needs the desired replica count",
            id="scale-without-replicas-refused",
        ),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=4, toRevision=2),
            "spec.action.params.toRevision: not a parameter of scale-workload (accepted: replicas)",
            id="scale-with-revision-refused-by-wire-name",
        ),
        pytest.param(
            action(A.DELETE_POD, K.POD, replicas=0),
            "spec.action.params.replicas: not a parameter of delete-pod (accepted: none)",
            id="delete-pod-takes-no-params",
        ),
        pytest.param(action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT), None, id="rollback-to-previous"),
        pytest.param(
            action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT, toRevision=3), None, id="rollback-to-n"
        ),
        pytest.param(
            action(A.SUSPEND_CRONJOB, K.CRON_JOB, suspend=False), None, id="resume-cronjob"
        ),
    ],
)
def test_params_problem(act: request.Action, problem: str | None) -> None:
    assert blast.params_problem(act) == problem


@pytest.mark.parametrize(
    ("act", "facts", "pods", "delta", "reversible"),
    [
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=4),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_replicas=3),
            1,
            1,
            True,
            id="scale-up-3-to-4-affects-one-pod",
        ),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.STATEFUL_SET, replicas=2),
            blast.TargetFacts(kind=K.STATEFUL_SET, current_replicas=5),
            3,
            -3,
            True,
            id="scale-down-5-to-2-affects-three-pods-negative-delta",
        ),
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=3),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_replicas=3),
            0,
            0,
            True,
            id="scale-to-current-count-affects-nothing",
        ),
        pytest.param(
            action(A.RESTART_WORKLOAD, K.DAEMON_SET),
            blast.TargetFacts(kind=K.DAEMON_SET, current_pods=7),
            7,
            0,
            False,
            id="restart-replaces-every-current-pod",
        ),
        pytest.param(
            action(A.ROLLBACK_DEPLOYMENT, K.DEPLOYMENT),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_pods=4, previous_revision_exists=True),
            4,
            0,
            True,
            id="rollback-replaces-every-pod-of-the-deployment",
        ),
        pytest.param(
            action(A.DELETE_POD, K.POD),
            blast.TargetFacts(kind=K.POD),
            1,
            0,
            False,
            id="delete-pod-affects-one-pod",
        ),
        pytest.param(
            action(A.CORDON_NODE, K.NODE),
            blast.TargetFacts(kind=K.NODE, pods_on_node=12),
            0,
            0,
            True,
            id="cordon-evicts-nothing-whatever-runs-on-the-node",
        ),
        pytest.param(
            action(A.UNCORDON_NODE, K.NODE),
            blast.TargetFacts(kind=K.NODE),
            0,
            0,
            True,
            id="uncordon-affects-nothing",
        ),
        pytest.param(
            action(A.SUSPEND_CRONJOB, K.CRON_JOB),
            blast.TargetFacts(kind=K.CRON_JOB, cronjob_suspended=False),
            0,
            0,
            True,
            id="suspend-affects-no-running-pod",
        ),
    ],
)
def test_blast_radius(
    act: request.Action, facts: blast.TargetFacts, pods: int, delta: int, reversible: bool
) -> None:
    radius = blast.blast_radius(act, facts)
    assert (radius.pods_affected, radius.replicas_delta, radius.reversible) == (
        pods,
        delta,
        reversible,
    )


@pytest.mark.parametrize(
    ("act", "missing"),
    [
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=4),
            ("current_replicas",),
            id="scale-needs-current-replicas",
        ),
        pytest.param(
            action(A.RESTART_WORKLOAD, K.DEPLOYMENT), ("current_pods",), id="restart-needs-pods"
        ),
        pytest.param(action(A.DELETE_POD, K.POD), (), id="delete-pod-needs-nothing"),
    ],
)
def test_missing_facts_make_blast_radius_unknown(
    act: request.Action, missing: tuple[str, ...]
) -> None:
    facts = blast.TargetFacts(kind=act.target.kind)
    assert blast.missing_facts(act.type, facts) == missing
    if missing:
        with pytest.raises(blast.MissingFactsError, match=missing[0]):
            blast.blast_radius(act, facts)


@pytest.mark.parametrize(
    ("act", "facts", "phrase"),
    [
        pytest.param(
            action(A.SCALE_WORKLOAD, K.DEPLOYMENT, replicas=6),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_replicas=3),
            "scales from 3 to 6 replicas (delta +3, 3 pods affected, reversible)",
            id="scale-says-from-to-and-delta",
        ),
        pytest.param(
            action(A.CORDON_NODE, K.NODE, name="node-1"),
            blast.TargetFacts(kind=K.NODE, pods_on_node=12),
            "evicts no pods (12 pods keep running on the node; reversible)",
            id="cordon-says-it-evicts-nothing-and-records-pods-on-node",
        ),
        pytest.param(
            action(A.SUSPEND_CRONJOB, K.CRON_JOB),
            blast.TargetFacts(kind=K.CRON_JOB, cronjob_suspended=True),
            "suspends the CronJob, which is already suspended: no change (reversible)",
            id="suspend-of-suspended-cronjob-says-no-change",
        ),
        pytest.param(
            action(A.DELETE_POD, K.POD),
            blast.TargetFacts(kind=K.POD),
            "affects 1 pod (irreversible)",
            id="delete-pod-says-irreversible",
        ),
    ],
)
def test_describe(act: request.Action, facts: blast.TargetFacts, phrase: str) -> None:
    assert blast.describe(act, facts, blast.blast_radius(act, facts)) == phrase
