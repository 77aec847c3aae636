"""The CLI behaves as kubectl users expect: flags, formats, durations, help, completion, errors."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from agent_authority.cli import completion, durations, main, printing

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _all_parsers(
    parser: argparse.ArgumentParser, path: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _all_parsers(child, f"{path} {name}".strip())
    return found


def test_every_command_help_has_examples() -> None:
    missing = [
        path or "(top)"
        for path, p in _all_parsers(main.parser())
        if "Examples:" not in p.format_help()
    ]
    assert missing == []


def test_no_command_uses_dash_o_for_anything_but_the_output_format() -> None:
    for path, parser in _all_parsers(main.parser()):
        for action in parser._actions:
            if "-o" in action.option_strings:
                assert action.dest == "output", f"{path}: -o means {action.dest}"


@pytest.mark.parametrize(
    ("argv", "namespace", "kubeconfig", "context"),
    [
        pytest.param(["-n", "agents", "requests"], "agents", None, None, id="before-the-command"),
        pytest.param(["requests", "-n", "agents"], "agents", None, None, id="after-the-command"),
        pytest.param(
            ["-n", "a", "--context", "c", "session", "list", "--kubeconfig", "k"],
            "a",
            "k",
            "c",
            id="split-around-the-command",
        ),
        pytest.param(["-n", "a", "show", "x", "-n", "b"], "b", None, None, id="after-wins"),
        pytest.param(["session", "list"], None, None, None, id="none-given"),
    ],
)
def test_connection_flags_are_accepted_before_and_after_the_command_as_kubectl_plugins(
    argv: list[str], namespace: str | None, kubeconfig: str | None, context: str | None
) -> None:
    args = main.parser().parse_args(argv)
    assert (args.namespace, args.kubeconfig, args.context) == (namespace, kubeconfig, context)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("600", 600, id="bare-number-is-seconds"),
        pytest.param("90s", 90, id="seconds"),
        pytest.param("30m", 1800, id="minutes"),
        pytest.param("1h", 3600, id="hours"),
        pytest.param("1h30m", 5400, id="hours-and-minutes"),
        pytest.param("1d", 86400, id="days"),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert durations.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "m", "30m1h", "-5", "1.5h"])
def test_a_bad_duration_says_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="allowed: 600, 90s, 30m, 1h"):
        durations.seconds(text)


def test_ttl_takes_a_duration() -> None:
    argv = ["session", "open", "--grant", "g", "--incident-id", "I", "--severity", "SEV2"]
    args = main.parser().parse_args([*argv, "--class", "c", "--ttl", "1h"])
    assert args.ttl == 3600


ITEMS = [
    {"kind": "RemediationRequest", "metadata": {"name": "a", "namespace": "agents"}, "spec": {}},
    {"kind": "RemediationRequest", "metadata": {"name": "b", "namespace": "agents"}, "spec": {}},
]


def _emit(
    output: str, items: list[dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    printing.emit_list(
        [dict(i) for i in items],
        output,
        header=lambda wide: ["NAME", "WIDE"] if wide else ["NAME"],
        row=lambda item, wide: (
            [item["metadata"]["name"], "w"] if wide else [item["metadata"]["name"]]
        ),
        empty="No remediation requests found in namespace agents.",
        kind="RemediationRequest",
    )
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_output_json_is_a_kubernetes_list(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = _emit("json", ITEMS, capsys)
    body = json.loads(out)
    assert body["kind"] == "List"
    assert [i["metadata"]["name"] for i in body["items"]] == ["a", "b"]


def test_output_yaml_is_a_kubernetes_list(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = _emit("yaml", ITEMS, capsys)
    assert [i["metadata"]["name"] for i in yaml.safe_load(out)["items"]] == ["a", "b"]


def test_output_name_is_kind_dot_group_slash_name(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = _emit("name", ITEMS, capsys)
    assert out.splitlines() == [
        "remediationrequest.agentauthority.io/a",
        "remediationrequest.agentauthority.io/b",
    ]


def test_output_wide_adds_columns(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = _emit("wide", ITEMS, capsys)
    assert out.splitlines()[0].split() == ["NAME", "WIDE"]
    assert _emit("", ITEMS, capsys)[0].splitlines()[0].split() == ["NAME"]


def test_an_empty_list_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = _emit("", [], capsys)
    assert out == ""
    assert err.strip() == "No remediation requests found in namespace agents."


def _bash_complete(words: list[str], script: str) -> list[str]:
    """Run the generated completion function in a real bash for ``words`` (last one: partial)."""
    line = " ".join(words)
    program = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        f"COMP_LINE={line!r}; _agent_authority; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True, timeout=30
    )
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture(scope="module")
def script() -> str:
    return completion.bash(main.parser())


def test_completion_script_is_valid_bash(script: str) -> None:
    subprocess.run(["bash", "-n"], input=script, text=True, check=True, timeout=30)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(["agent-authority", "ses"], ["session"], id="commands"),
        pytest.param(["agent-authority", "session", "l"], ["list"], id="verbs"),
        pytest.param(["agent-authority", "requests", "--all-p"], ["--all-phases"], id="flags"),
        pytest.param(["agent-authority", "requests", "-o", "y"], ["yaml"], id="output-choices"),
        pytest.param(
            ["agent-authority", "-n", "agents", "session", "open", "--severity", "SEV"],
            ["SEV1", "SEV2", "SEV3", "SEV4"],
            id="after-a-global-flag",
        ),
        pytest.param(["kubectl-agent", "grant", "e"], ["explain"], id="as-the-kubectl-plugin"),
    ],
)
def test_bash_completion_completes(script: str, words: list[str], expected: list[str]) -> None:
    assert _bash_complete(words, script) == expected


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environ,
    )


def test_a_missing_kubeconfig_is_one_line_naming_it_and_what_to_do(tmp_path: pathlib.Path) -> None:
    done = _cli("requests", "--kubeconfig", str(tmp_path / "agent.kubeconfig"))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        f"kubeconfig {tmp_path / 'agent.kubeconfig'} (--kubeconfig) does not exist" in done.stderr
    )


def test_no_kubeconfig_at_all_is_one_line(tmp_path: pathlib.Path) -> None:
    done = _cli("session", "list", env={"HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG (hack/dev prints one)"
    )


def test_an_unreachable_apiserver_is_one_line_naming_the_address(tmp_path: pathlib.Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        done = _cli("requests", "-A", "--kubeconfig", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"cannot reach the apiserver at https://127.0.0.1:{port} (connection refused)" in (
        done.stderr
    )


def test_an_unknown_context_is_one_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    done = _cli("requests", "--kubeconfig", str(path), "--context", "nope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "nope" in done.stderr


def test_a_closed_stdout_is_not_an_error() -> None:
    """``… | head``: the reader has gone before the command writes; no traceback, status 0."""
    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE, as after `head` exits
    try:
        done = subprocess.run(
            [sys.executable, "-m", "agent_authority.cli.main", "completion", "bash"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 0


def test_completion_prints_a_script() -> None:
    done = _cli("completion", "bash")
    assert done.returncode == 0
    assert "complete -o default -F _agent_authority agent-authority kubectl-agent" in done.stdout
