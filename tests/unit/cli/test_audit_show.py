"""``agent-authority audit show --session``: one session's records, gateway calls included."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from agent_authority.audit import chain, signing, sinks
from agent_authority.cli import main
from agent_authority.models import audit as audit_models

T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def _entry(event: str, correlation: str, name: str, uid: str) -> audit_models.AuditEntry:
    return audit_models.AuditEntry(
        event=audit_models.AuditEvent(event),
        correlation_id=correlation,
        actor="system:serviceaccount:agents:aa-x",
        object=audit_models.ObjectRef(
            kind="IncidentSession", namespace="agents", name=name, uid=uid
        ),
        reason="Forwarded",
        message="get configmaps 'a' in namespace shop: HTTP 200",
    )


@pytest.fixture
def log(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "audit.log"
    with sinks.JsonLinesFile(path, fsync=False) as sink:
        trail = chain.Chain(signing.Signer(signing.generate_private_key()), sink, clock=lambda: T0)
        trail.append(_entry("SessionOpened", "uid-a", "triage-a", "uid-a"))
        trail.append(_entry("GatewayRequest", "uid-a/r1", "triage-a", "uid-a"))
        trail.append(_entry("GatewayRequest", "uid-b/r2", "triage-b", "uid-b"))
        trail.append(_entry("SessionEnded", "uid-b", "triage-b", "uid-b"))
    return path


@pytest.mark.parametrize(
    ("args", "want"),
    [
        pytest.param(["--session", "uid-a"], ["uid-a", "uid-a/r1"], id="by-uid"),
        pytest.param(["--session", "triage-b"], ["uid-b/r2", "uid-b"], id="by-name"),
        pytest.param(
            ["--session", "uid-a", "--event", "GatewayRequest"], ["uid-a/r1"], id="by-event"
        ),
        pytest.param([], ["uid-a", "uid-a/r1", "uid-b/r2", "uid-b"], id="everything"),
        pytest.param(["--session", "uid-"], [], id="no-prefix-match"),
    ],
)
def test_show_filters_by_session(
    log: pathlib.Path, capsys: pytest.CaptureFixture[str], args: list[str], want: list[str]
) -> None:
    assert main.main(["audit", "show", str(log), "-o", "json", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["correlationId"] for line in lines] == want


def test_show_text_names_event_and_session(
    log: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["audit", "show", str(log), "--session", "uid-a"]) == 0
    out = capsys.readouterr().out
    assert "GatewayRequest\tagents/triage-a\tForwarded" in out


def test_show_refuses_an_unreadable_log(tmp_path: pathlib.Path) -> None:
    assert main.main(["audit", "show", str(tmp_path / "missing.log")]) == 2
