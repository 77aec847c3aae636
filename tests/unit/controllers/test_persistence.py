"""kopf's diff base for sessions and requests: read from the object's status, never written."""

from __future__ import annotations

import json
from typing import Any

import kopf
import pytest

from agent_authority import runtime
from agent_authority.controllers import persistence

API = "agentauthority.io/v1alpha1"
PROGRESS = "agentauthority.io/created"
RETRYING = json.dumps({"started": "2026-12-02T07:00:00.0", "retries": 1, "purpose": "create"})


def _body(
    kind: str,
    phase: str | None = None,
    annotations: dict[str, str] | None = None,
    api_version: str = API,
) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "o", "namespace": "ns", "uid": "u", "annotations": annotations or {}},
        "spec": {"sessionRef": {"name": "s"}} if kind == "RemediationRequest" else {"x": 1},
    }
    if phase is not None:
        raw["status"] = {"phase": phase}
    return kopf.Body(raw)


def _settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Given serving files, so configure makes no CA of its own.
    runtime.configure(
        settings, runtime.Options(webhook_cert="c.pem", webhook_key="k.pem", webhook_ca="ca.pem")
    )
    return settings


def _storage() -> persistence.DiffBase:
    storage = _settings().persistence.diffbase_storage
    assert isinstance(storage, persistence.DiffBase)  # what the operator runs with
    return storage


def _progress() -> persistence.Progress:
    storage = _settings().persistence.progress_storage
    assert isinstance(storage, persistence.Progress)  # what the operator runs with
    return storage


# What kopf is told about the last handled state: None means "never handled" (its create
# handler runs, or is retried); the object itself means "handled, nothing changed".
DIFF_BASES = [
    pytest.param("IncidentSession", None, {}, None, id="a-new-session-is-created"),
    pytest.param("RemediationRequest", None, {}, None, id="a-new-request-is-created"),
    *(
        pytest.param("IncidentSession", phase, {}, "itself", id=f"a-{phase.lower()}-session")
        for phase in ("Pending", "Active", "Denied", "Ended", "Expired", "Revoked")
    ),
    *(
        pytest.param("RemediationRequest", phase, {}, "itself", id=f"a-{phase.lower()}-request")
        for phase in (
            "Pending",
            "AwaitingApproval",
            "Approved",
            "Applying",
            "Succeeded",
            "Failed",
            "Denied",
            "Expired",
            "Cancelled",
            "RolledBack",
        )
    ),
    pytest.param(
        "RemediationRequest",
        None,
        {PROGRESS: RETRYING},
        None,
        id="a-request-whose-create-handler-is-retried-before-a-phase-is-created-again",
    ),
    pytest.param(
        "RemediationRequest",
        "Succeeded",
        {PROGRESS: RETRYING},
        None,
        id="a-request-whose-create-handler-failed-after-writing-a-phase-is-retried",
    ),
    pytest.param(
        "IncidentSession",
        "Active",
        {"agentauthority.io/opened": RETRYING},
        None,
        id="a-session-whose-create-handler-failed-after-writing-a-phase-is-retried",
    ),
    pytest.param(
        "RemediationRequest",
        "AwaitingApproval",
        {
            "agentauthority.io/kopf-managed": "yes",
            "agentauthority.io/touch-dummy": "2026-12-02T07:00:00.0",
            "agentauthority.io/last-handled-configuration": '{"spec":{"a":1}}',
        },
        "itself",
        id="kopfs-marker-touch-and-an-old-diff-base-are-no-progress",
    ),
    pytest.param(
        "RemediationRequest",
        "AwaitingApproval",
        {"example.com/created": RETRYING},
        "itself",
        id="another-operators-progress-is-not-ours",
    ),
    pytest.param(
        "RemediationRequest",
        "AwaitingApproval",
        {"agentauthority.io/created": '{"retries": 1'},
        "itself",
        id="a-malformed-annotation-is-no-progress",
    ),
]


@pytest.mark.parametrize(("kind", "phase", "annotations", "expected"), DIFF_BASES)
def test_the_diff_base_kopf_is_given(
    kind: str, phase: str | None, annotations: dict[str, str], expected: str | None
) -> None:
    storage, body = _storage(), _body(kind, phase, annotations)
    fetched = storage.fetch(body=body)
    if expected is None:
        assert fetched is None
    else:
        assert fetched == storage.build(body=body)


@pytest.mark.parametrize("kind", sorted(persistence.HANDLED_KINDS))
def test_no_diff_base_is_written_for_a_handled_kind(kind: str) -> None:
    storage, body, patch = _storage(), _body(kind, "Pending"), kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch


OTHER_KINDS = [
    pytest.param(_body("AgentGrant"), id="a-grant"),
    pytest.param(
        _body("RemediationRequest", "Succeeded", api_version="floor.bench.agentauthority.io/v1"),
        id="a-request-of-another-api-group",
    ),
]


@pytest.mark.parametrize("body", OTHER_KINDS)
def test_other_kinds_keep_kopfs_annotation(body: kopf.Body) -> None:
    storage, patch = _storage(), kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert "agentauthority.io/last-handled-configuration" in patch["metadata"]["annotations"]
    assert storage.fetch(body=body) is None  # the body holds no annotation yet


def _succeeded_at_once(body: kopf.Body) -> kopf.Patch:
    """What kopf patches after a handler that succeeds on its first try: its progress stored,
    then purged with the rest, in one patch."""
    storage, patch = _progress(), kopf.Patch()
    handler = kopf.HandlerId("created")
    storage.store(key=handler, record={"success": True}, body=body, patch=patch)  # type: ignore[typeddict-item]
    storage.purge(key=handler, body=body, patch=patch)
    return patch


@pytest.mark.parametrize("kind", sorted(persistence.HANDLED_KINDS))
def test_a_handled_kind_handled_at_once_leaves_kopf_nothing_to_patch(kind: str) -> None:
    assert not _succeeded_at_once(_body(kind))


def test_other_kinds_still_get_kopfs_marker() -> None:
    patch = _succeeded_at_once(_body("AgentGrant"))
    assert patch["metadata"]["annotations"] == {"agentauthority.io/kopf-managed": "yes"}


@pytest.mark.parametrize("kind", sorted(persistence.HANDLED_KINDS))
def test_a_retried_handler_keeps_its_progress_and_is_retried(kind: str) -> None:
    storage, patch = _progress(), kopf.Patch()
    record = {"retries": 1, "delayed": "2026-12-02T07:00:00+00:00"}
    storage.store(key=kopf.HandlerId("created"), record=record, body=_body(kind), patch=patch)  # type: ignore[typeddict-item]
    annotations = patch["metadata"]["annotations"]
    assert PROGRESS in annotations
    assert "agentauthority.io/kopf-managed" not in annotations
    # The next event shows that progress (and, say, the phase the handler wrote before it
    # failed): kopf is given no diff base, so it goes on with the create handler's retries.
    after = _body(kind, "Pending", {PROGRESS: annotations[PROGRESS]})
    assert _storage().fetch(body=after) is None
