"""The pure helpers of the actions: field paths, the diff a write makes, merge patches."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.actions import fields
from agent_authority.models import request


def fc(path: str, before: str | None, after: str | None) -> request.FieldChange:
    return request.FieldChange(path=path, before=before, after=after)


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        pytest.param(("spec", "replicas"), "spec.replicas", id="plain-keys-join-with-dots"),
        pytest.param(
            ("spec", "template", "metadata", "annotations", "kubectl.kubernetes.io/restartedAt"),
            "spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]",
            id="keys-with-dots-or-slashes-in-brackets",
        ),
        pytest.param(("a.b",), "[a.b]", id="bracketed-first-key"),
    ],
)
def test_render(path: fields.Path, rendered: str) -> None:
    assert fields.render(path) == rendered


def test_get_is_none_on_any_missing_step() -> None:
    obj = {"spec": {"replicas": 3, "list": [1]}}
    assert fields.get(obj, ("spec", "replicas")) == 3
    assert fields.get(obj, ("spec", "missing", "deeper")) is None
    assert fields.get(obj, ("spec", "list", "x")) is None


CONTAINERS = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}}


@pytest.mark.parametrize(
    ("before", "after", "paths", "changes"),
    [
        pytest.param(
            {"spec": {"replicas": 3}},
            {"spec": {"replicas": 4}},
            [("spec", "replicas")],
            [fc("spec.replicas", "3", "4")],
            id="scalar-as-json-text",
        ),
        pytest.param(
            {"spec": {}},
            {"spec": {"unschedulable": True}},
            [("spec", "unschedulable")],
            [fc("spec.unschedulable", None, "true")],
            id="added-field-has-no-before",
        ),
        pytest.param(
            {"spec": {"replicas": 3}, "status": {"replicas": 1}},
            {"spec": {"replicas": 3}, "status": {"replicas": 9}},
            [("spec", "replicas")],
            [],
            id="only-the-touched-paths",
        ),
        pytest.param(
            CONTAINERS,
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "sidecar", "image": "s:1"},
                                {"name": "app", "image": "a:2"},
                            ]
                        }
                    }
                }
            },
            [("spec", "template")],
            [
                fc("spec.template.spec.containers[name=app].image", "a:1", "a:2"),
                fc("spec.template.spec.containers[name=sidecar].image", None, "s:1"),
                fc("spec.template.spec.containers[name=sidecar].name", None, "sidecar"),
            ],
            id="named-lists-matched-by-name-order-ignored",
        ),
        pytest.param(
            {"t": {"tolerations": [{"key": "a"}, {"key": "b"}]}},
            {"t": {"tolerations": [{"key": "a"}]}},
            [("t",)],
            [fc("t.tolerations[1].key", "b", None)],
            id="unnamed-lists-by-index",
        ),
        pytest.param(
            {"c": {"args": ["--a", "--b"]}},
            {"c": {"args": ["--a", "--c"]}},
            [("c",)],
            [fc("c.args", '["--a","--b"]', '["--a","--c"]')],
            id="scalar-lists-are-leaves",
        ),
        pytest.param(
            {"m": {"labels": {"app": "web", "track": "canary"}}},
            {"m": {"labels": {"app": "web"}, "resources": {}}},
            [("m",)],
            [fc("m.labels.track", "canary", None)],
            id="removed-key-and-empty-map-added",
        ),
    ],
)
def test_field_changes(
    before: dict[str, Any], after: dict[str, Any], paths: list[fields.Path], changes: list[Any]
) -> None:
    assert fields.field_changes(before, after, paths) == changes


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, to check the patches we compute."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


@pytest.mark.parametrize(
    ("before", "after", "patch"),
    [
        pytest.param({"a": 1}, {"a": 2}, {"a": 2}, id="changed-value"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, {"b": None}, id="removed-key-is-null"),
        pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"x": 1}}, {"a": {"y": None}}, id="nested"),
        pytest.param({"l": [1, 2]}, {"l": [2]}, {"l": [2]}, id="lists-replaced-whole"),
        pytest.param(3, 4, 4, id="scalars"),
        pytest.param({"a": 1}, {"a": 1}, {}, id="equal-is-empty"),
    ],
)
def test_merge_patch_between(before: Any, after: Any, patch: Any) -> None:
    assert fields.merge_patch_between(before, after) == patch
    assert apply_merge_patch(before, patch) == after
