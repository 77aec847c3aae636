"""Find the control-plane binaries, or build pinned versions once from their Go modules.

Lookup order, as controller-runtime's envtest: ``TEST_ASSET_KUBE_APISERVER`` / ``TEST_ASSET_ETCD``
/ ``TEST_ASSET_KUBE_CONTROLLER_MANAGER``, then ``KUBEBUILDER_ASSETS`` (a folder holding the three),
then the cache (``$AGENT_AUTHORITY_CACHE``, default ``~/.cache/agent-authority``), building into it
when a binary is missing. Kubernetes is built through a wrapper module that requires
``k8s.io/kubernetes`` and replaces every staging module with its published ``v0.Y.Z`` (``go
install pkg@version`` refuses modules with replace directives); etcd through a wrapper that requires
``go.etcd.io/etcd/server/v3`` and its siblings at one version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager")
NODE = ("kubelet", "kube-proxy", "kube-scheduler")
ETCD_MODULES = (
    "go.etcd.io/etcd/api/v3",
    "go.etcd.io/etcd/client/pkg/v3",
    "go.etcd.io/etcd/client/v3",
    "go.etcd.io/etcd/pkg/v3",
    "go.etcd.io/etcd/server/v3",
)


class AssetError(RuntimeError):
    """A control-plane binary could not be found or built; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Binaries:
    kube_apiserver: pathlib.Path
    kube_controller_manager: pathlib.Path
    etcd: pathlib.Path


def cache_dir() -> pathlib.Path:
    root = os.environ.get("AGENT_AUTHORITY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agent-authority"
    )
    return pathlib.Path(root)


def _log(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


def _explicit(env: str) -> pathlib.Path | None:
    value = os.environ.get(env)
    if not value:
        return None
    path = pathlib.Path(value)
    if not os.access(path, os.X_OK):
        raise AssetError(f"{env}={value} is not an executable file")
    return path


def _from_assets_dir(name: str) -> pathlib.Path | None:
    folder = os.environ.get("KUBEBUILDER_ASSETS")
    if not folder:
        return None
    path = pathlib.Path(folder) / name
    if not os.access(path, os.X_OK):
        raise AssetError(f"KUBEBUILDER_ASSETS={folder} has no executable {name}")
    return path


def find_or_build() -> Binaries:
    """The three binaries, building whatever is neither configured nor cached."""
    found: dict[str, pathlib.Path | None] = {
        "kube-apiserver": _explicit("TEST_ASSET_KUBE_APISERVER")
        or _from_assets_dir("kube-apiserver"),
        "kube-controller-manager": _explicit("TEST_ASSET_KUBE_CONTROLLER_MANAGER")
        or _from_assets_dir("kube-controller-manager"),
        "etcd": _explicit("TEST_ASSET_ETCD") or _from_assets_dir("etcd"),
    }
    if found["kube-apiserver"] is None or found["kube-controller-manager"] is None:
        kube = kubernetes_binaries()
        found["kube-apiserver"] = found["kube-apiserver"] or kube / "kube-apiserver"
        found["kube-controller-manager"] = (
            found["kube-controller-manager"] or kube / "kube-controller-manager"
        )
    if found["etcd"] is None:
        found["etcd"] = etcd_binaries() / "etcd"
    apiserver, controller_manager, etcd = (
        found["kube-apiserver"],
        found["kube-controller-manager"],
        found["etcd"],
    )
    assert apiserver is not None
    assert controller_manager is not None
    assert etcd is not None
    return Binaries(apiserver, controller_manager, etcd)


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    """Serialize builds across processes (two test runs must not build the same thing twice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise AssetError(
            "Go is not installed (no `go` on PATH). Install Go >= 1.26 to build the local control "
            "plane, or point KUBEBUILDER_ASSETS at a folder with kube-apiserver, "
            "kube-controller-manager and etcd."
        )
    return go


def _run_go(
    args: list[str], cwd: pathlib.Path, what: str, env: dict[str, str] | None = None
) -> str:
    """Run ``go`` under ``nice -n 10`` (the machine is shared with other builds)."""
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    result = subprocess.run(
        [*nice, _go(), *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-30:])
        raise AssetError(f"building {what} failed: go {' '.join(args)} (in {cwd}):\n{tail}")
    return result.stdout


def _staging_modules(version: str, workdir: pathlib.Path) -> list[str]:
    """The staging modules k8s.io/kubernetes replaces locally, read from its own go.mod."""
    info = json.loads(
        _run_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], workdir, "kubernetes")
    )
    modules = []
    for line in pathlib.Path(info["GoMod"]).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            modules.append(parts[0])
    if not modules:
        raise AssetError(f"no staging replace directives found in k8s.io/kubernetes@{version}")
    return modules


def _build(
    name: str,
    target: pathlib.Path,
    write_module: Callable[[pathlib.Path], None],
    packages: list[str],
    ldflags: str,
    partial: str | None = None,
) -> None:
    src = cache_dir() / "src" / name
    tmp_bin = cache_dir() / "bin" / f".{partial or name}.partial"
    shutil.rmtree(tmp_bin, ignore_errors=True)
    src.mkdir(parents=True, exist_ok=True)
    tmp_bin.mkdir(parents=True)
    write_module(src)
    started = time.monotonic()
    _log(f"building {name} from Go modules into {target} (first time only; minutes) ...")
    _run_go(["mod", "tidy"], src, name)
    _run_go(["build", "-ldflags", ldflags, "-o", f"{tmp_bin}/", *packages], src, name)
    if target.exists():
        shutil.rmtree(target)
    tmp_bin.rename(target)
    _log(f"built {name} in {time.monotonic() - started:.0f} s")


def kubernetes_binaries(
    version: str = KUBERNETES_VERSION, names: tuple[str, ...] = CONTROL_PLANE, suffix: str = ""
) -> pathlib.Path:
    """A folder with ``names`` (default: kube-apiserver and kube-controller-manager)."""
    target = cache_dir() / "bin" / f"kubernetes{suffix}-{version}"
    if all((target / n).exists() for n in names):
        return target
    with _locked(cache_dir() / "locks" / f"kubernetes-{version}.lock"):
        if all((target / n).exists() for n in names):
            return target
        minor = version.lstrip("v").split(".")[1]

        def write(src: pathlib.Path) -> None:
            staging = _staging_modules(version, src)
            staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
            lines = [
                "module agentauthority.local/kubernetes",
                "",
                "go 1.26.0",
                "",
                f"require k8s.io/kubernetes {version}",
                "",
                "replace (",
                *[f"\t{m} => {m} {staging_version}" for m in staging],
                ")",
                "",
                "tool (",
                *[f"\tk8s.io/kubernetes/cmd/{n}" for n in (*CONTROL_PLANE, *NODE)],
                ")",
            ]
            (src / "go.mod").write_text("\n".join(lines) + "\n")

        ldflags = " ".join(
            [
                "-s -w",
                f"-X k8s.io/component-base/version.gitVersion={version}",
                "-X k8s.io/component-base/version.gitMajor=1",
                f"-X k8s.io/component-base/version.gitMinor={minor}",
            ]
        )
        _build(
            f"kubernetes-{version}",
            target,
            write,
            [f"k8s.io/kubernetes/cmd/{n}" for n in names],
            ldflags,
            partial=f"kubernetes{suffix}-{version}",
        )
    return target


def node_binaries(version: str = KUBERNETES_VERSION) -> pathlib.Path:
    """A folder with kubelet, kube-proxy and kube-scheduler (same wrapper module and cache)."""
    return kubernetes_binaries(version, NODE, "-node")


def etcd_binaries(version: str = ETCD_VERSION) -> pathlib.Path:
    """A folder with the etcd server of ``version``."""
    target = cache_dir() / "bin" / f"etcd-{version}"
    if (target / "etcd").exists():
        return target
    with _locked(cache_dir() / "locks" / f"etcd-{version}.lock"):
        if (target / "etcd").exists():
            return target

        def write(src: pathlib.Path) -> None:
            lines = [
                "module agentauthority.local/etcd",
                "",
                "go 1.26.0",
                "",
                "require (",
                *[f"\t{m} {version}" for m in ETCD_MODULES],
                ")",
                "",
                "tool go.etcd.io/etcd/server/v3",
            ]
            (src / "go.mod").write_text("\n".join(lines) + "\n")

        _build(f"etcd-{version}", target, write, ["go.etcd.io/etcd/server/v3"], "-s -w")
        server = target / "server"  # go names a /vN package's binary after the element before
        if server.exists():
            server.rename(target / "etcd")
    return target


# The helpers other localcluster modules (the node) build with.
locked = _locked
log = _log
run_go = _run_go
