"""``agent-authority run`` refuses a bad receivers file or plain HTTP off loopback up front."""

from __future__ import annotations

import pathlib

import pytest

from agent_authority.cli import approvals, main


def _options(*argv: str) -> dict[str, object]:
    args = main.parser().parse_args(["run", *argv])
    return approvals.run_options(args)


def test_the_page_and_receivers_reach_the_runtime_options(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "receivers.yaml"
    config.write_text("receivers: [{name: a, format: slack, url: 'https://hooks.example/x'}]\n")
    options = _options("--approvals-port=8443", f"--notify-config={config}")
    assert options["approvals_port"] == 8443
    assert options["approvals_addr"] == "127.0.0.1"
    assert options["notify_config"] == str(config)


def test_a_bad_receivers_file_stops_the_operator_naming_the_field(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "receivers.yaml"
    config.write_text("receivers: [{name: a, format: json, url: 'https://x'}]\n")
    with pytest.raises(SystemExit, match="secretFile"):
        _options(f"--notify-config={config}")


def test_plain_http_off_loopback_stops_the_operator() -> None:
    with pytest.raises(SystemExit, match=r"refusing plain HTTP on 0\.0\.0\.0"):
        _options("--approvals-port=8443", "--approvals-addr=0.0.0.0")


def test_behind_a_tls_proxy_plain_http_is_a_choice() -> None:
    options = _options(
        "--approvals-port=8443", "--approvals-addr=0.0.0.0", "--approvals-insecure-http"
    )
    assert options["approvals_insecure_http"] is True
