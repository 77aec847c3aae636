"""What the cluster commands print and do, on objects shaped as the apiserver returns them."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import stat
from typing import Any

import pytest
from kubernetes.client import exceptions

from agent_authority.cli import files, requests, session
from agent_authority.kube import errors


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Core:
    """``read_namespaced_secret`` answering with the given statuses first, then the Secret."""

    def __init__(self, failures: list[int]) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.token = "tok"

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> _Response:
        self.calls += 1
        if self.failures:
            raise exceptions.ApiException(status=self.failures.pop(0), reason="injected")
        data = {"token": base64.b64encode(self.token.encode()).decode()}
        return _Response({"metadata": {"name": name}, "data": data})


class _Kube:
    def __init__(self, core: _Core) -> None:
        self.core = core


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    "statuses",
    [
        pytest.param([403], id="rbac-not-propagated-yet"),
        pytest.param([404], id="secret-not-visible-yet"),
        pytest.param([503, 429, 500], id="apiserver-busy"),
        pytest.param([403, 404, 503], id="all-of-them"),
    ],
)
def test_session_token_is_read_with_retries_on_transient_refusals(statuses: list[int]) -> None:
    core, clock = _Core(statuses), _Clock()
    token = session.read_token(_Kube(core), "agents", "s", 15, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert token == "tok"
    assert core.calls == len(statuses) + 1


def test_session_token_read_gives_up_at_the_deadline_with_the_last_error() -> None:
    core, clock = _Core([403] * 1000), _Clock()
    with pytest.raises(errors.Forbidden):
        session.read_token(_Kube(core), "agents", "s", 5, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert clock.now <= 5
    assert 3 < core.calls < 20  # capped backoff, not a busy loop


def test_session_token_read_does_not_retry_an_invalid_request() -> None:
    core, clock = _Core([400]), _Clock()
    with pytest.raises(errors.Invalid):
        session.read_token(_Kube(core), "agents", "s", 15, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert core.calls == 1


def test_a_kubeconfig_is_owner_only_before_a_byte_is_written(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write lands in a file that is already 0600, even with a permissive umask."""
    modes: list[int] = []
    real_write = os.write

    def watched(fd: int, data: bytes) -> int:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    path = tmp_path / "session.kubeconfig"
    old = os.umask(0)
    monkeypatch.setattr(os, "write", watched)
    try:
        files.write_private(path, "token: secret\n")
    finally:
        os.umask(old)
    assert modes
    assert set(modes) == {0o600}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "token: secret\n"


def test_an_existing_readable_kubeconfig_is_restricted_before_it_is_overwritten(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "session.kubeconfig"
    path.write_text("old")
    path.chmod(0o644)
    modes: list[int] = []
    real_write = os.write

    def watched(fd: int, data: bytes) -> int:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", watched)
    files.write_private(path, "new")
    assert set(modes) == {0o600}
    assert path.read_text() == "new"


def test_a_kubeconfig_is_not_written_through_a_symlink(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        files.write_private(tmp_path / "link", "token")
    assert target.read_text() == "keep"


def _session(phase: str, reason: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "expiresAt": "2099-01-01T00:00:00Z"}
    if reason:
        status["revocation"] = {"reason": reason, "message": "m", "time": "2026-01-01T00:00:00Z"}
    return {
        "metadata": {"name": "s", "namespace": "agents"},
        "spec": {
            "grantRef": {"name": "g"},
            "incident": {"id": "INC-1", "severity": "SEV2", "class": "latency"},
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("phase", "reason", "shown", "expires"),
    [
        pytest.param("Active", None, "Active", "2099-01-01T00:00:00Z", id="active"),
        pytest.param("Revoked", "Deviation", "Revoked (Deviation)", "-", id="revoked-deviation"),
        pytest.param("Revoked", "GrantDeleted", "Revoked (GrantDeleted)", "-", id="revoked-grant"),
        pytest.param("Ended", "Ended", "Ended", "-", id="ended-not-repeated"),
        pytest.param("Expired", "Expired", "Expired", "-", id="expired"),
    ],
)
def test_session_list_shows_the_revocation_reason_and_no_future_expiry_once_over(
    phase: str, reason: str | None, shown: str, expires: str
) -> None:
    row = session._row(_session(phase, reason), wide=False)
    header = session._header(False)
    assert row[header.index("PHASE")] == shown
    assert row[header.index("EXPIRES")] == expires


def _request(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "inc-1-scale", "namespace": "agents"},
        "spec": {
            "sessionRef": {"name": "s"},
            "action": {
                "type": "scale-workload",
                "target": {"kind": "Deployment", "namespace": "shop", "name": "checkout"},
                "params": {"replicas": 4},
            },
            "hypothesis": "h",
            "evidence": [],
        },
        "status": {"phase": phase, **status},
    }


INVERSE = {
    "action": {
        "type": "scale-workload",
        "target": {"kind": "Deployment", "namespace": "shop", "name": "checkout"},
        "params": {"replicas": 3},
    }
}
DIFF = [{"path": "spec.replicas", "before": "3", "after": "4"}, {"path": "x", "after": "1"}]


def _grant(*actions: str, autonomy: str = "propose") -> dict[str, Any]:
    return {
        "metadata": {"name": "sre-bot"},
        "spec": {
            "subjects": [{"kind": "Group", "name": "g"}],
            "incidents": {"severities": ["SEV2"]},
            "read": [{"name": "r", "namespaces": ["shop"], "resources": ["pods"]}],
            "remediations": [
                {"action": a, "namespaces": ["shop"], "autonomy": autonomy} for a in actions
            ],
        },
    }


def test_show_prints_no_python_reprs() -> None:
    text = requests.describe(_request("AwaitingApproval", diff=DIFF, requiredApprovals=2))
    assert "{'" not in text
    assert "None" not in text
    assert "replicas=4" in text
    assert "spec.replicas: 3 -> 4" in text
    assert "x: (unset) -> 1" in text
    assert "Approvals:   0/2" in text


@pytest.mark.parametrize(
    ("phase", "heading"),
    [
        pytest.param("AwaitingApproval", "What will change (server-side dry-run):", id="waiting"),
        pytest.param("Succeeded", "What changed:", id="succeeded"),
        pytest.param("Denied", "What would have changed (not applied):", id="denied"),
        pytest.param("Failed", "What was to change (the apply failed):", id="failed"),
    ],
)
def test_show_heads_the_changes_by_phase(phase: str, heading: str) -> None:
    text = requests.describe(_request(phase, diff=DIFF))
    assert heading in text
    if phase != "AwaitingApproval":
        assert "What will change" not in text


@pytest.mark.parametrize(
    ("phase", "inverse", "grant", "undo"),
    [
        pytest.param(
            "Succeeded",
            INVERSE,
            _grant("scale-workload"),
            "scale-workload Deployment/shop/checkout replicas=3: agent-authority rollback "
            'inc-1-scale -n agents --reason "…"',
            id="allowed-is-offered",
        ),
        pytest.param(
            "Succeeded",
            {**INVERSE, "action": {**INVERSE["action"], "type": "rollback-deployment"}},
            _grant("scale-workload"),
            "not offered: grant 'sre-bot' has no remediation entry for rollback-deployment",
            id="not-in-the-grant-is-not-offered",
        ),
        pytest.param(
            "Succeeded",
            INVERSE,
            _grant("scale-workload", autonomy="never"),
            "not offered: scale-workload has autonomy 'never'",
            id="autonomy-never-is-not-offered",
        ),
        pytest.param(
            "Denied", None, None, "nothing to undo: the request was not applied", id="denied"
        ),
        pytest.param("Succeeded", None, None, "not reversible: no inverse", id="no-inverse"),
        pytest.param("RolledBack", INVERSE, None, "already rolled back", id="rolled-back"),
    ],
)
def test_show_offers_only_an_undo_that_can_succeed(
    phase: str, inverse: dict[str, Any] | None, grant: dict[str, Any] | None, undo: str
) -> None:
    extra = {"inverse": inverse} if inverse else {}
    line = requests.undo_line(_request(phase, **extra), grant)
    assert undo in line


def test_a_denied_scale_does_not_say_not_reversible() -> None:
    text = requests.describe(
        _request("Denied", blastRadius={"podsAffected": 1, "replicasDelta": 1, "reversible": True})
    )
    assert "not reversible" not in text
    assert "reversible: yes" in text


def test_request_list_target_names_the_namespace_and_approvals_count() -> None:
    row = requests._row(
        _request(
            "AwaitingApproval",
            requiredApprovals=2,
            approvals=[{"decision": "approve", "reason": "r"}],
            diff=DIFF,
        ),
        wide=False,
    )
    header = requests._header(False)
    assert row[header.index("TARGET")] == "Deployment/shop/checkout"
    assert row[header.index("APPROVALS")] == "1/2"
    assert row[header.index("CHANGES")] == "spec.replicas: 3 -> 4; x: (unset) -> 1"
