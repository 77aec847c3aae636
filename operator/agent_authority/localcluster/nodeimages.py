"""Images the node needs that no registry provides here: the sandbox ("pause") image.

The pause program is ours (a few lines of Go: wait for SIGTERM/SIGINT, reap children), built
statically and wrapped into an OCI archive with :mod:`ociimage`, cached under
``<cache>/images``. The node imports it into containerd and pins it as the sandbox image.
"""

from __future__ import annotations

import os
import pathlib
import shutil

from agent_authority.localcluster import assets, ociimage

PAUSE_VERSION = "1"
PAUSE_IMAGE = f"localhost/agent-authority/pause:{PAUSE_VERSION}"

_PAUSE_SOURCE = """\
// The sandbox process of a pod: holds its namespaces, reaps orphans, exits on SIGTERM/SIGINT.
package main

import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tsignals := make(chan os.Signal, 8)
\tsignal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
\tfor sig := range signals {
\t\tif sig != syscall.SIGCHLD {
\t\t\tos.Exit(0)
\t\t}
\t\tfor {
\t\t\tvar status syscall.WaitStatus
\t\t\tpid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
\t\t\tif pid <= 0 || err != nil {
\t\t\t\tbreak
\t\t\t}
\t\t}
\t}
}
"""


def images_dir() -> pathlib.Path:
    return assets.cache_dir() / "images"


def pause_archive() -> pathlib.Path:
    """The OCI archive of :data:`PAUSE_IMAGE`, built once."""
    return go_program_archive("pause", PAUSE_VERSION, PAUSE_IMAGE, _PAUSE_SOURCE)


def go_program_archive(name: str, version: str, image: str, source: str) -> pathlib.Path:
    """The OCI archive of ``image``: the one-file Go program ``source`` built statically as
    ``/<name>`` (its entrypoint, run as 65535), built once into ``<cache>/images``."""
    out = images_dir() / f"{name}-{version}.tar"
    if out.exists():
        return out
    with assets.locked(assets.cache_dir() / "locks" / f"{name}.lock"):
        if out.exists():
            return out
        src = assets.cache_dir() / "src" / name
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        (src / "go.mod").write_text(f"module agentauthority.local/{name}\n\ngo 1.26.0\n")
        (src / "main.go").write_text(source)
        env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64"}
        assets.run_go(
            ["build", "-trimpath", "-ldflags", "-s -w", "-o", name, "."], src, name, env=env
        )
        layer = ociimage.layer_from_files({name: ((src / name).read_bytes(), 0o755)})
        ociimage.write_archive(
            out,
            image,
            [layer],
            {"Entrypoint": [f"/{name}"], "User": "65535:65535", "WorkingDir": "/"},
        )
    return out
