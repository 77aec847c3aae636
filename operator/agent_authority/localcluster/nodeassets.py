"""Find or build the node's binaries: kubelet, kube-proxy, scheduler, containerd v2, runc, Helm.

Each is built once from its Go module at a pinned version into the same cache as the control
plane (``assets.cache_dir()/bin``), under ``nice -n 10`` (the machine is shared). kubelet and
kube-proxy come from the Kubernetes wrapper module of :mod:`assets`; the others from a small
wrapper module per project (``require`` + ``tool``), so ``go mod tidy`` records their
dependencies. The CNI plugins and iptables are Debian packages, found on the host; a missing one
is an :class:`assets.AssetError` naming the package to install.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess
import time

from agent_authority.localcluster import assets

CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
CONTAINERD_VERSION = "v2.4.2"
RUNC_MODULE = "github.com/opencontainers/runc"
RUNC_VERSION = "v1.5.3"
CRI_TOOLS_MODULE = "sigs.k8s.io/cri-tools"
CRI_TOOLS_VERSION = "v1.37.0"
HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.22.0"
CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
HOST_TOOLS = {"iptables": "iptables", "ip": "iproute2", "nsenter": "util-linux"}


@dataclasses.dataclass(frozen=True)
class NodeBinaries:
    kubelet: pathlib.Path
    kube_proxy: pathlib.Path
    kube_scheduler: pathlib.Path
    containerd: pathlib.Path
    containerd_shim: pathlib.Path
    ctr: pathlib.Path
    runc: pathlib.Path
    crictl: pathlib.Path
    cni_dir: pathlib.Path
    iptables: pathlib.Path


def _wrapper_build(
    name: str,
    module: str,
    version: str,
    packages: list[str],
    *,
    ldflags: str = "-s -w",
    tags: str = "",
    cgo: bool = False,
) -> pathlib.Path:
    """Build ``packages`` of ``module@version`` into ``<cache>/bin/<name>-<version>``."""
    target = assets.cache_dir() / "bin" / f"{name}-{version}"
    binaries = [p.rstrip("/").rsplit("/", 1)[-1] for p in packages]
    if all((target / b).exists() for b in binaries):
        return target
    with assets.locked(assets.cache_dir() / "locks" / f"{name}-{version}.lock"):
        if all((target / b).exists() for b in binaries):
            return target
        src = assets.cache_dir() / "src" / f"{name}-{version}"
        partial = assets.cache_dir() / "bin" / f".{name}-{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        src.mkdir(parents=True, exist_ok=True)
        partial.mkdir(parents=True)
        lines = [f"module agentauthority.local/{name}", "", "go 1.26.0", ""]
        lines += [f"require {module} {version}", "", "tool (", *[f"\t{p}" for p in packages], ")"]
        (src / "go.mod").write_text("\n".join(lines) + "\n")
        env = {**os.environ, "CGO_ENABLED": "1" if cgo else "0"}
        started = time.monotonic()
        assets.log(f"building {name} {version} from its Go module (first time only; minutes) ...")
        assets.run_go(["mod", "tidy"], src, name, env=env)
        build = ["build", "-trimpath", "-ldflags", ldflags, "-o", f"{partial}/"]
        if tags:
            build += ["-tags", tags]
        assets.run_go([*build, *packages], src, name, env=env)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
        assets.log(f"built {name} in {time.monotonic() - started:.0f} s")
    return target


def containerd_binaries() -> pathlib.Path:
    version_pkg = f"{CONTAINERD_MODULE}/version"
    return _wrapper_build(
        "containerd",
        CONTAINERD_MODULE,
        CONTAINERD_VERSION,
        [
            f"{CONTAINERD_MODULE}/cmd/containerd",
            f"{CONTAINERD_MODULE}/cmd/containerd-shim-runc-v2",
            f"{CONTAINERD_MODULE}/cmd/ctr",
        ],
        ldflags=f"-s -w -X {version_pkg}.Version={CONTAINERD_VERSION}",
        tags="no_btrfs no_devmapper no_zfs no_aufs",
    )


def runc_binaries() -> pathlib.Path:
    if subprocess.run(["pkg-config", "--exists", "libseccomp"], check=False).returncode != 0:
        raise assets.AssetError(
            "runc is built with seccomp support and needs libseccomp's headers: "
            "apt-get install -y libseccomp-dev pkg-config"
        )
    return _wrapper_build(
        "runc",
        RUNC_MODULE,
        RUNC_VERSION,
        [RUNC_MODULE],
        ldflags=f"-s -w -X main.version={RUNC_VERSION.lstrip('v')}",
        tags="seccomp",
        cgo=True,
    )


def crictl_binaries() -> pathlib.Path:
    return _wrapper_build(
        "cri-tools",
        CRI_TOOLS_MODULE,
        CRI_TOOLS_VERSION,
        [f"{CRI_TOOLS_MODULE}/cmd/crictl"],
    )


def helm() -> pathlib.Path:
    """The pinned Helm client (``HELM`` overrides it with a binary you already have)."""
    explicit = os.environ.get("HELM")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise assets.AssetError(f"HELM={explicit} is not an executable file")
        return pathlib.Path(explicit)
    folder = _wrapper_build(
        "helm",
        HELM_MODULE,
        HELM_VERSION,
        [f"{HELM_MODULE}/cmd/helm"],
        ldflags=f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    )
    return folder / "helm"


def _cni_dir() -> pathlib.Path:
    for folder in CNI_DIRS:
        if all(os.access(pathlib.Path(folder) / p, os.X_OK) for p in CNI_PLUGINS):
            return pathlib.Path(folder)
    raise assets.AssetError(
        f"the CNI plugins {', '.join(CNI_PLUGINS)} were not found in {' or '.join(CNI_DIRS)}: "
        "apt-get install -y containernetworking-plugins"
    )


def _host_tool(name: str) -> pathlib.Path:
    found = shutil.which(name)
    if found is None:
        raise assets.AssetError(f"`{name}` is not installed: apt-get install -y {HOST_TOOLS[name]}")
    return pathlib.Path(found)


def find_or_build() -> NodeBinaries:
    """Every node binary, building what is not cached; host tools must already be installed."""
    cni = _cni_dir()
    iptables = _host_tool("iptables")
    for tool in ("ip", "nsenter"):
        _host_tool(tool)
    kube = assets.node_binaries()
    containerd = containerd_binaries()
    runc = runc_binaries()
    crictl = crictl_binaries()
    return NodeBinaries(
        kubelet=kube / "kubelet",
        kube_proxy=kube / "kube-proxy",
        kube_scheduler=kube / "kube-scheduler",
        containerd=containerd / "containerd",
        containerd_shim=containerd / "containerd-shim-runc-v2",
        ctr=containerd / "ctr",
        runc=runc / "runc",
        crictl=crictl / "crictl",
        cni_dir=cni,
        iptables=iptables,
    )
