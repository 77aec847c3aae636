"""Fixtures for tests on a real single-node cluster (``hack/cluster`` machinery), no Docker.

One control plane + node per test module (one node per host at a time): containerd v2, runc,
kubelet, kube-proxy, CNI, with the operator's image built by ``hack/image`` (cached by a hash of
what goes into it) imported from its OCI archive. The operator runs as pods installed by the
chart with the pinned Helm. Missing infrastructure (not root, a binary that cannot be built)
fails with a clear message.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from agent_authority.cli import devnode, failures
from agent_authority.localcluster import assets, cluster, node, nodeassets

ROOT = pathlib.Path(__file__).resolve().parents[2]


def build_image(tag: str) -> pathlib.Path:
    """The operator's OCI archive (``dev --node`` builds and caches it the same way)."""
    started = time.monotonic()
    try:
        archive = devnode.build_image(tag)
    except failures.CliError as e:
        pytest.fail(str(e), pytrace=False)
    print(f"\n[node] image {archive.name} ready in {time.monotonic() - started:.0f} s")
    return archive


@pytest.fixture(scope="session")
def operator_image() -> tuple[pathlib.Path, str]:
    tag = devnode.image_tag()
    return build_image(tag), tag


@pytest.fixture(scope="module")
def node_cluster(
    operator_image: tuple[pathlib.Path, str],
) -> Iterator[tuple[cluster.LocalCluster, node.LocalNode]]:
    if os.geteuid() != 0:
        pytest.fail(
            "the node tests need root (containerd, mounts, network namespaces, iptables); "
            "run them as root on a throwaway machine or CI",
            pytrace=False,
        )
    subprocess.run([str(ROOT / "hack" / "node-deps")], check=True, timeout=900)
    local = cluster.LocalCluster(node.cluster_options())
    worker: node.LocalNode | None = None
    try:
        started = time.monotonic()
        local.start()
        worker = node.LocalNode(local, images=[operator_image[0]]).start()
        print(
            f"\n[node] control plane {local.startup_seconds:.1f} s, node Ready "
            f"{worker.startup_seconds:.1f} s, total {time.monotonic() - started:.1f} s"
        )
    except (assets.AssetError, cluster.ClusterError, node.NodeError) as e:
        if worker is not None:
            worker.stop()
        local.stop()
        pytest.fail(f"the single-node cluster could not be started:\n{e}", pytrace=False)
    try:
        yield local, worker
    finally:
        worker.stop()
        local.stop()


@pytest.fixture(scope="module")
def node_admin(node_cluster: tuple[cluster.LocalCluster, node.LocalNode]) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(node_cluster[0].kubeconfig))


@pytest.fixture(scope="session")
def helm() -> pathlib.Path:
    try:
        return nodeassets.helm()
    except assets.AssetError as e:
        pytest.fail(f"Helm could not be built: {e}", pytrace=False)
