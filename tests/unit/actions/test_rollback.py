"""Revision history of a Deployment, as ``kubectl rollout undo`` reads it."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.actions import rollback


def template(image: str, hashed: bool = True) -> dict[str, Any]:
    labels = {"app": "web", **({"pod-template-hash": "abc"} if hashed else {})}
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a", "image": image}]}}


def replica_set(
    revision: str | None, image: str, owner: str = "dep-1", controller: bool = True
) -> dict[str, Any]:
    annotations = {} if revision is None else {rollback.REVISION: revision}
    return {
        "metadata": {
            "annotations": annotations,
            "ownerReferences": [{"uid": owner, "controller": controller}],
        },
        "spec": {"template": template(image)},
    }


def test_without_hash_copies_and_drops_only_the_hash_label() -> None:
    original = template("a:1")
    assert rollback.without_hash(original) == template("a:1", hashed=False)
    assert original["metadata"]["labels"]["pod-template-hash"] == "abc"


def test_history_keeps_controlled_numbered_replica_sets() -> None:
    found = rollback.history(
        [
            replica_set("1", "a:1"),
            replica_set("2", "a:2"),
            replica_set("3", "x", owner="other"),
            replica_set("4", "x", controller=False),
            replica_set(None, "x"),
            replica_set("bad", "x"),
        ],
        "dep-1",
    )
    assert found == {1: template("a:1", hashed=False), 2: template("a:2", hashed=False)}


def test_current_revision_is_the_one_with_the_deployment_template() -> None:
    revisions = {1: template("a:1", hashed=False), 2: template("a:2", hashed=False)}
    assert rollback.current_revision(revisions, template("a:2", hashed=False)) == 2
    assert rollback.current_revision(revisions, template("a:3", hashed=False)) is None


@pytest.mark.parametrize(
    ("current", "available", "to_revision", "chosen"),
    [
        pytest.param(3, [1, 2, 3], None, 2, id="default-is-highest-other"),
        pytest.param(2, [2, 3], None, 3, id="current-need-not-be-the-highest"),
        pytest.param(3, [1, 2, 3], 1, 1, id="explicit"),
        pytest.param(3, [3], None, None, id="no-other-revision"),
        pytest.param(3, [1, 3], 2, None, id="explicit-missing"),
        pytest.param(3, [1, 3], 3, 3, id="explicit-current-left-to-the-caller"),
    ],
)
def test_choose(
    current: int, available: list[int], to_revision: int | None, chosen: int | None
) -> None:
    assert rollback.choose(current, available, to_revision) == chosen
