"""The gateway's upstream client authenticates as the operator however its token was loaded.

In a pod the operator's identity is its ServiceAccount token, which the Kubernetes client's
in-cluster loader stores under ``BearerToken``; without it every gateway call (its session watch,
token reviews, forwarded requests) went out anonymous.
"""

from __future__ import annotations

import pathlib

import pytest
from kubernetes import client, config

from agent_authority.kube import upstream


def _in_cluster(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> client.Configuration:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("operator-token")
    ca.write_text("not read here")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    configuration = client.Configuration()
    loader = config.incluster_config.InClusterConfigLoader(
        token_filename=str(token), cert_filename=str(ca)
    )
    loader.load_and_set(configuration)
    return configuration


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param("in-cluster", "bearer operator-token", id="in-cluster-service-account"),
        pytest.param("authorization", "Bearer given", id="authorization-key"),
        pytest.param("client-certificate", None, id="no-token"),
    ],
)
def test_the_operator_credential_is_sent(
    kind: str, expected: str | None, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "in-cluster":
        configuration = _in_cluster(tmp_path, monkeypatch)
    else:
        configuration = client.Configuration()
        configuration.host = "https://127.0.0.1:6443"
        if kind == "authorization":
            configuration.api_key = {"authorization": "Bearer given"}
    assert upstream.Upstream(configuration)._credential() == expected
