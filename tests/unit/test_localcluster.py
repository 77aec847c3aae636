"""Clear errors from the control-plane tooling: Go missing, a failed build, a taken port."""

from __future__ import annotations

import os
import pathlib
import socket
import stat

import pytest

from agent_authority.localcluster import assets, cluster


@pytest.fixture
def empty_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("AGENT_AUTHORITY_CACHE", str(tmp_path / "cache"))
    for var in (
        "KUBEBUILDER_ASSETS",
        "TEST_ASSET_KUBE_APISERVER",
        "TEST_ASSET_ETCD",
        "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
    ):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_missing_go_says_how_to_fix_it(
    empty_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(empty_cache))
    with pytest.raises(assets.AssetError, match=r"Go is not installed.*KUBEBUILDER_ASSETS"):
        assets.find_or_build()


def test_failed_build_reports_the_go_error(
    empty_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_go = empty_cache / "go"
    fake_go.write_text("#!/bin/sh\necho 'go: module lookup disabled by GOPROXY=off' >&2\nexit 1\n")
    fake_go.chmod(fake_go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{empty_cache}{os.pathsep}/usr/bin{os.pathsep}/bin")
    with pytest.raises(assets.AssetError) as failed:
        assets.find_or_build()
    assert "building kubernetes" in str(failed.value)
    assert "GOPROXY=off" in str(failed.value)


def test_assets_folder_without_binaries_is_refused(
    empty_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(empty_cache))
    with pytest.raises(assets.AssetError, match="has no executable kube-apiserver"):
        assets.find_or_build()


def test_explicit_assets_are_used_without_building(
    empty_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("kube-apiserver", "kube-controller-manager", "etcd"):
        binary = empty_cache / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(empty_cache))
    monkeypatch.setenv("PATH", str(empty_cache / "nowhere"))  # building would fail: no go
    found = assets.find_or_build()
    assert found.kube_apiserver == empty_cache / "kube-apiserver"
    assert found.etcd == empty_cache / "etcd"


def test_a_taken_port_is_named_in_the_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(cluster.ClusterError, match=f"port {port} .* is taken"):
            cluster.LocalCluster(cluster.Options(apiserver_port=port)).start()
