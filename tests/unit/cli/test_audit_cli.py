"""``agent-authority audit verify``: offline verification of an audit log, as auditors run it."""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import chain, signing, sinks
from agent_authority.cli import audit
from agent_authority.models import audit as audit_models

T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
RECORDS = 5


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return signing.generate_private_key()


@pytest.fixture
def public_key(tmp_path: pathlib.Path, key: ed25519.Ed25519PrivateKey) -> pathlib.Path:
    path = tmp_path / "audit-public.pem"
    signing.write_public_key(key.public_key(), path)
    return path


@pytest.fixture
def log(tmp_path: pathlib.Path, key: ed25519.Ed25519PrivateKey) -> pathlib.Path:
    """A log of five records, written by the operator's own chain and file sink."""
    path = tmp_path / "audit.log"
    ticks = itertools.count()
    with sinks.JsonLinesFile(path, fsync=False) as sink:
        trail = chain.Chain(
            signing.Signer(key),
            sink,
            clock=lambda: T0 + datetime.timedelta(seconds=next(ticks)),
        )
        for i in range(RECORDS):
            trail.append(
                audit_models.AuditEntry(
                    event=audit_models.AuditEvent.REQUEST_EVALUATED,
                    correlation_id="6f1c2a3e-0000-4000-8000-000000000001",
                    actor="system:serviceaccount:agent-authority:operator",
                    object=audit_models.ObjectRef(
                        kind="RemediationRequest", namespace="shop", name=f"scale-{i}"
                    ),
                    reason="AutoApproved",
                    message=f"request {i}",
                )
            )
    return path


def lines(path: pathlib.Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def record(path: pathlib.Path, seq: int) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(lines(path)[seq])
    return value


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    top = argparse.ArgumentParser(prog="agent-authority")
    sub = top.add_subparsers(dest="command", required=True)
    audit.add_parser(sub)
    args = top.parse_args(["audit", "verify", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_log_verifies(
    capsys: pytest.CaptureFixture[str], log: pathlib.Path, public_key: pathlib.Path
) -> None:
    head = record(log, RECORDS - 1)["hash"]
    code, out, _ = cli(capsys, str(log), "--public-key", str(public_key))
    assert code == 0
    assert out.splitlines()[:2] == [
        f"OK: 5 records, head seq 4 hash {head}",
        f"  next anchor: --anchor-seq 4 --anchor-hash {head}",
    ]
    assert "no anchor given" in out


def test_clean_log_verifies_against_its_anchor(
    capsys: pytest.CaptureFixture[str], log: pathlib.Path, public_key: pathlib.Path
) -> None:
    head = record(log, RECORDS - 1)["hash"]
    argv = [str(log), "--public-key", str(public_key), "--anchor-seq", "4", "--anchor-hash", head]
    code, out, _ = cli(capsys, *argv)
    assert code == 0
    assert "no anchor given" not in out


def edit(seq: int, **changes: Any) -> Callable[[list[str]], list[str]]:
    def tamper(log_lines: list[str]) -> list[str]:
        log_lines[seq] = json.dumps({**json.loads(log_lines[seq]), **changes}) + "\n"
        return log_lines

    return tamper


TAMPER_CASES = [
    pytest.param(
        edit(2, message="nothing to see"),
        "TAMPERED at seq 2 (line 3): hash mismatch — the line says ",
        id="record-edited",
    ),
    pytest.param(
        lambda log_lines: log_lines[:1] + log_lines[2:],
        "TAMPERED at seq 1 (line 2): sequence gap — expected seq 1, found 2",
        id="record-deleted",
    ),
    pytest.param(
        lambda log_lines: [log_lines[0], log_lines[2], log_lines[1], *log_lines[3:]],
        "TAMPERED at seq 1 (line 2): sequence gap",
        id="records-swapped",
    ),
    pytest.param(
        lambda log_lines: [*log_lines[:3], "{not json\n", *log_lines[3:]],
        "TAMPERED at seq 3 (line 4): unparseable line — not JSON",
        id="garbage-inserted",
    ),
]


@pytest.mark.parametrize(("tamper", "expected"), TAMPER_CASES)
def test_tampered_log_names_the_first_bad_record(
    capsys: pytest.CaptureFixture[str],
    log: pathlib.Path,
    public_key: pathlib.Path,
    tamper: Callable[[list[str]], list[str]],
    expected: str,
) -> None:
    log.write_text("".join(tamper(lines(log))))
    code, out, _ = cli(capsys, str(log), "--public-key", str(public_key))
    assert code == 1
    assert out.startswith(expected)


def test_truncation_shows_only_against_an_anchor(
    capsys: pytest.CaptureFixture[str], log: pathlib.Path, public_key: pathlib.Path
) -> None:
    head = record(log, RECORDS - 1)["hash"]
    log.write_text("".join(lines(log)[:3]))
    code, _, _ = cli(capsys, str(log), "--public-key", str(public_key))
    assert code == 0
    argv = [str(log), "--public-key", str(public_key), "--anchor-seq", "4", "--anchor-hash", head]
    code, out, _ = cli(capsys, *argv)
    assert code == 1
    assert out.startswith("TAMPERED at seq 3: truncated — the log ends at seq 2")
    assert "3 records before it verified; last good seq 2 hash " in out


def test_log_signed_with_another_key_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, log: pathlib.Path
) -> None:
    other = tmp_path / "other.pem"
    signing.write_public_key(signing.generate_private_key().public_key(), other)
    code, out, _ = cli(capsys, str(log), "--public-key", str(other))
    assert code == 1
    assert out.startswith("TAMPERED at seq 0 (line 1): unknown key — signed by key ")
    assert "no record before it verified" in out


def test_json_output(
    capsys: pytest.CaptureFixture[str], log: pathlib.Path, public_key: pathlib.Path
) -> None:
    log.write_text("".join(edit(1, actor="mallory")(lines(log))))
    code, out, _ = cli(capsys, str(log), "--public-key", str(public_key), "-o", "json")
    report = json.loads(out)
    assert code == 1
    assert report == {
        "log": str(log),
        "ok": False,
        "recordsChecked": 1,
        "head": {"seq": 0, "hash": record(log, 0)["hash"]},
        "firstBadSeq": 1,
        "line": 2,
        "reason": "hash mismatch",
        "detail": report["detail"],
        "keyIds": [signing.key_id(signing.load_public_key(public_key))],
    }


def test_log_from_stdin(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log: pathlib.Path,
    public_key: pathlib.Path,
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(log.read_bytes()))
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, _ = cli(capsys, "-", "--public-key", str(public_key))
    assert (code, out.split(",")[0]) == (0, "OK: 5 records")


def test_empty_log_verifies_but_says_it_is_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, public_key: pathlib.Path
) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    code, out, _ = cli(capsys, str(empty), "--public-key", str(public_key))
    assert (code, out.splitlines()[0]) == (0, "OK: empty log, 0 records")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["--anchor-seq", "3"], "--anchor-seq and --anchor-hash go together", id="half-anchor"
        ),
        pytest.param(
            ["--anchor-seq", "3", "--anchor-hash", "abc"], "allowed: 64 hex digits", id="short-hash"
        ),
        pytest.param(
            ["--anchor-seq", "-1", "--anchor-hash", "0" * 64],
            "allowed: 0 or more",
            id="negative-seq",
        ),
        pytest.param(["--log", "missing.log"], "cannot read the audit log", id="missing-log"),
        pytest.param(
            ["--public-key", "missing.pem"], "cannot read audit public key", id="missing-key"
        ),
    ],
)
def test_unusable_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    log: pathlib.Path,
    public_key: pathlib.Path,
    argv: list[str],
    expected: str,
) -> None:
    options = {"--log": str(log), "--public-key": str(public_key)}
    extra: list[str] = []
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        if flag in options:
            options[flag] = str(tmp_path / value)
        else:
            extra += [flag, value]
    code, out, err = cli(capsys, options["--log"], "--public-key", options["--public-key"], *extra)
    assert (code, out) == (2, "")
    assert expected in err


def test_a_rotated_log_verifies_from_its_first_key_through_the_hand_over(
    capsys: pytest.CaptureFixture[str],
    log: pathlib.Path,
    public_key: pathlib.Path,
    key: ed25519.Ed25519PrivateKey,
) -> None:
    old, new = signing.Signer(key), signing.Signer(signing.generate_private_key())
    with chain.Chain.resume(
        log,
        new,
        clock=lambda: T0 + datetime.timedelta(hours=1),
        fsync=False,
        root_key=old.public_key,
        outgoing=old,
    ) as rotated:
        rotated.append(
            audit_models.AuditEntry(
                event=audit_models.AuditEvent.SESSION_ENDED,
                correlation_id="c",
                actor="a",
                object=audit_models.ObjectRef(kind="IncidentSession", name="s"),
                reason="Ended",
            )
        )
    code, out, _ = cli(capsys, str(log), "--public-key", str(public_key))
    assert code == 0, out
    assert out.startswith(f"OK: {RECORDS + 2} records")
    assert f"signing keys, in hand-over order: {old.key_id} -> {new.key_id}" in out
