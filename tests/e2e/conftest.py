"""Fixtures for end-to-end tests on a real kube-apiserver + etcd (+ kube-controller-manager).

The control plane is started once per test session (``hack/controlplane`` machinery) and the CRDs
from ``crds/`` are installed. Missing infrastructure is a failure with a clear message, never a
skip: these tests are the proof that the project does what it says.
"""

from __future__ import annotations

import pathlib
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client, config

from agent_authority.cli import dev
from agent_authority.localcluster import assets, cluster
from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[cluster.LocalCluster]:
    local = cluster.LocalCluster(cluster.Options(audit_url=f"https://127.0.0.1:{_port()}/audit"))
    try:
        local.start()
    except (assets.AssetError, cluster.ClusterError) as e:
        pytest.fail(
            "the local control plane (kube-apiserver + etcd) could not be started, so the "
            f"end-to-end tests cannot run. Fix this, do not skip it:\n{e}",
            pytrace=False,
        )
    print(f"\n[e2e] control plane ready in {local.startup_seconds:.1f} s at {local.url}")
    try:
        yield local
    finally:
        local.stop()


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def admin(local_cluster: cluster.LocalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(local_cluster.kubeconfig))


@pytest.fixture(scope="session")
def crds(admin: client.ApiClient) -> list[str]:
    """Install every CRD in ``crds/`` and wait until each is Established."""
    ext = client.ApiextensionsV1Api(admin)
    names = []
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        names.append(body["metadata"]["name"])
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as e:
            if e.status != 409:
                raise
    deadline = time.monotonic() + 30
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            crd = ext.read_custom_resource_definition(name)
            conds = {c.type: c.status for c in (crd.status.conditions or [])}
            if conds.get("Established") == "True":
                pending.discard(name)
        time.sleep(0.1)
    assert not pending, f"CRDs not Established within 30 s: {sorted(pending)}"
    return names


@pytest.fixture
def namespace(admin: client.ApiClient, local_cluster: cluster.LocalCluster) -> Iterator[str]:
    """A fresh namespace where sessions may live (the operator's session Role installed)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(admin).create_namespace(client.V1Namespace(metadata={"name": name}))
    agents.allow_sessions_in(local_cluster, name)
    yield name
    client.CoreV1Api(admin).delete_namespace(name)


@pytest.fixture(scope="session")
def operator(
    local_cluster: cluster.LocalCluster, crds: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The real operator, running as its own restricted identity, for the whole test session."""
    audit_port = int(local_cluster.options.audit_url.rsplit(":", 1)[1].split("/")[0])
    env = dev.prepare(
        local_cluster,
        metrics_port=_port(),
        webhook_port=_port(),
        audit_port=audit_port,
        gateway_port=_port(),  # sessions stay direct unless their grant asks for the gateway
    )
    env.options.rotate_after = 20  # seconds: long-lived test sessions get their tokens rotated
    env.options.alert_port = _port()  # the /alertmanager receiver (tests/e2e/test_alerts.py)
    env.options.alert_poll_seconds = 20  # polling fallback, slower than a notification
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(local_cluster, env, log)
    try:
        process.start()
    except RuntimeError as e:
        pytest.fail(f"the operator could not start: {e}", pytrace=False)
    try:
        yield process
    finally:
        process.stop()
        print(f"\n[e2e] operator log: {log}")
