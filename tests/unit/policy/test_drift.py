"""Apply-time drift of a reviewed target, one table row per way it can change."""

from __future__ import annotations

import pytest

from agent_authority.models import request
from agent_authority.policy import drift

FC = request.FieldChange
R3 = request.BlastRadius(pods_affected=3, replicas_delta=3)
SCALE = [FC(path="spec.replicas", before="3", after="6")]

DRIFT_CASES = [
    pytest.param("u1", "u1", SCALE, SCALE, R3, R3, False, None, id="unchanged-target-applies"),
    pytest.param(None, "u1", SCALE, SCALE, R3, R3, False, "status.targetUid", id="never-evaluated"),
    pytest.param(
        "u1",
        "u2",
        SCALE,
        SCALE,
        R3,
        R3,
        False,
        "was deleted and created again since the request was reviewed (uid u1 then, u2 now)",
        id="recreated-target-same-diff",
    ),
    pytest.param(
        "u1",
        "u1",
        SCALE,
        [FC(path="spec.replicas", before="4", after="6")],
        R3,
        R3,
        False,
        "the reviewed change was spec.replicas: 3 -> 6, it would now be spec.replicas: 4 -> 6",
        id="moved-target-different-diff",
    ),
    pytest.param(
        "u1",
        "u1",
        [FC(path="spec.paused", before=None, after="true")],
        [],
        R3,
        R3,
        False,
        "spec.paused: (unset) -> true, it would now be no change",
        id="absent-values-read-unset-never-None",
    ),
    pytest.param(
        "u1",
        "u1",
        SCALE,
        SCALE,
        R3,
        request.BlastRadius(pods_affected=5, replicas_delta=3),
        False,
        "blast radius 3 pods affected, replicas +3, reversible then, 5 pods affected",
        id="more-pods-than-reviewed",
    ),
    pytest.param("u1", "u1", SCALE, [], R3, R3, True, None, id="resumed-and-in-place"),
    pytest.param("u1", "u1", SCALE, SCALE, R3, R3, True, None, id="resumed-before-the-write"),
    pytest.param(
        "u1",
        "u1",
        [FC(path="metadata.deletionTimestamp", after="2026-01-01T00:00:00Z")],
        [FC(path="metadata.deletionTimestamp", after="2026-01-01T00:05:00Z")],
        R3,
        R3,
        False,
        None,
        id="dry-run-deletion-time-is-compared-by-path",
    ),
]


@pytest.mark.parametrize(
    ("reviewed_uid", "uid", "reviewed", "now", "reviewed_radius", "radius", "resuming", "says"),
    DRIFT_CASES,
)
def test_target_drift(
    reviewed_uid: str | None,
    uid: str,
    reviewed: list[request.FieldChange],
    now: list[request.FieldChange],
    reviewed_radius: request.BlastRadius,
    radius: request.BlastRadius,
    resuming: bool,
    says: str | None,
) -> None:
    found = drift.target_drift(
        target="Deployment shop/web",
        reviewed_uid=reviewed_uid,
        uid=uid,
        reviewed_diff=reviewed,
        diff=now,
        reviewed_radius=reviewed_radius,
        radius=radius,
        resuming=resuming,
    )
    if says is None:
        assert found is None
    else:
        assert found is not None
        assert says in found
        assert "{" not in found
        assert "None" not in found
