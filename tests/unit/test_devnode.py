"""``dev --node``'s pure parts: its refusal without root, the chart settings, the demo it applies.

Bringing it up and tearing it down on the real node is ``tests/node/test_dev_node.py``.
"""

from __future__ import annotations

import argparse
import ipaddress

import pytest

from agent_authority.cli import dev, devnode, failures


def test_without_root_it_refuses_at_once_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnode.os, "geteuid", lambda: 1000)
    with pytest.raises(failures.CliError) as refused:
        devnode.run(argparse.Namespace(name="x", session_mode=None, exit_after=0, no_demo=False))
    assert "dev --node needs root" in str(refused.value)
    assert "without --node" in str(refused.value)


def _settings(mode: str) -> dict[str, str]:
    args = devnode.chart_values("0.1.0-abc", mode)
    assert args[::2] == ["--set"] * (len(args) // 2)
    return dict(a.split("=", 1) for a in args[1::2])


@pytest.mark.parametrize("mode", ["gateway", "direct"])
def test_the_chart_is_installed_with_the_gateway_and_audit_at_the_fixed_address(mode: str) -> None:
    settings = _settings(mode)
    address = devnode.SERVICE_ADDRESS
    assert settings["webhooks.clusterIP"] == address
    assert settings["gateway.url"] == f"https://{address}:{devnode.GATEWAY_PORT}"
    assert settings["gateway.sessionMode"] == mode
    assert settings["auditWebhook.enabled"] == "true"
    assert settings["image.pullPolicy"] == "Never"
    assert settings["sessionNamespaces"] == "{agents}"
    assert settings["scopeNamespaces"] == "{shop}"


def test_the_fixed_address_is_in_the_static_band_of_the_service_range() -> None:
    """Kubernetes allocates dynamic ClusterIPs above the first 16 addresses of a /24 first."""
    network = ipaddress.ip_network("10.0.0.0/24")
    address = ipaddress.ip_address(devnode.SERVICE_ADDRESS)
    assert address in network
    assert 1 < int(address) - int(network.network_address) < 16


def test_the_demo_runs_a_local_image_and_leaves_the_dev_demo_alone() -> None:
    (deployment,) = [d for d in devnode.demo_docs() if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == devnode.DEMO_IMAGE
    assert container["imagePullPolicy"] == "Never"
    (original,) = [d for d in dev.DEMO if d["kind"] == "Deployment"]
    assert original["spec"]["template"]["spec"]["containers"][0]["image"] != devnode.DEMO_IMAGE


def test_plain_dev_keeps_direct_sessions_and_node_is_opt_in() -> None:
    parser = argparse.ArgumentParser()
    dev.add_parser(parser.add_subparsers())
    args = parser.parse_args(["dev"])
    assert args.node is False
    assert args.session_mode is None  # dev resolves it to direct, dev --node to gateway
    assert parser.parse_args(["dev", "--node"]).node is True
