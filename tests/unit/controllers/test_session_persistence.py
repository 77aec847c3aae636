"""kopf's diff base for sessions: read from the session's status, never written."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from agent_authority import runtime
from agent_authority.controllers import session_persistence


def _session(phase: str | None) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "agentauthority.io/v1alpha1",
        "kind": "IncidentSession",
        "metadata": {"name": "s", "namespace": "ns", "uid": "u", "annotations": {}},
        "spec": {"grantRef": {"name": "g"}, "ended": False},
    }
    if phase is not None:
        raw["status"] = {"phase": phase}
    return kopf.Body(raw)


def _grant() -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "agentauthority.io/v1alpha1",
            "kind": "AgentGrant",
            "metadata": {"name": "g", "uid": "g1", "annotations": {}},
            "spec": {"subjects": []},
        }
    )


def _storage() -> session_persistence.DiffBase:
    settings = kopf.OperatorSettings()
    # Given serving files, so configure makes no CA of its own.
    runtime.configure(
        settings, runtime.Options(webhook_cert="c.pem", webhook_key="k.pem", webhook_ca="ca.pem")
    )
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, session_persistence.DiffBase)  # what the operator runs with
    return storage


def test_a_session_never_handled_has_no_diff_base_so_kopf_creates_it() -> None:
    assert _storage().fetch(body=_session(None)) is None


@pytest.mark.parametrize("phase", ["Pending", "Active", "Denied", "Ended", "Expired", "Revoked"])
def test_a_handled_session_has_itself_as_diff_base_so_kopf_sees_no_change(phase: str) -> None:
    storage, body = _storage(), _session(phase)
    assert storage.fetch(body=body) == storage.build(body=body)


def test_no_diff_base_is_written_for_a_session() -> None:
    storage, body, patch = _storage(), _session("Active"), kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch


def test_other_kinds_keep_kopfs_annotation() -> None:
    storage, body, patch = _storage(), _grant(), kopf.Patch()
    essence = storage.build(body=body)
    storage.store(body=body, patch=patch, essence=essence)
    assert "agentauthority.io/last-handled-configuration" in patch["metadata"]["annotations"]
    assert storage.fetch(body=body) is None  # the grant's body holds no annotation yet


def _progress() -> session_persistence.Progress:
    settings = kopf.OperatorSettings()
    runtime.configure(
        settings, runtime.Options(webhook_cert="c.pem", webhook_key="k.pem", webhook_ca="ca.pem")
    )
    storage = settings.persistence.progress_storage
    assert isinstance(storage, session_persistence.Progress)  # what the operator runs with
    return storage


def _succeeded_at_once(body: kopf.Body) -> kopf.Patch:
    """What kopf patches after a handler that succeeds on its first try: its progress stored,
    then purged with the rest, in one patch."""
    storage, patch = _progress(), kopf.Patch()
    handler = kopf.HandlerId("opened")
    storage.store(key=handler, record={"success": True}, body=body, patch=patch)  # type: ignore[typeddict-item]
    storage.purge(key=handler, body=body, patch=patch)
    return patch


def test_a_session_handled_at_once_leaves_kopf_nothing_to_patch() -> None:
    assert not _succeeded_at_once(_session(None))


def test_other_kinds_still_get_kopfs_marker() -> None:
    patch = _succeeded_at_once(_grant())
    assert patch["metadata"]["annotations"] == {"agentauthority.io/kopf-managed": "yes"}


def test_a_retried_session_handler_keeps_its_progress() -> None:
    storage, patch = _progress(), kopf.Patch()
    record = {"retries": 1, "delayed": "2026-12-02T07:00:00+00:00"}
    storage.store(key=kopf.HandlerId("opened"), record=record, body=_session(None), patch=patch)  # type: ignore[typeddict-item]
    annotations = patch["metadata"]["annotations"]
    assert "agentauthority.io/opened" in annotations
    assert "agentauthority.io/kopf-managed" not in annotations
