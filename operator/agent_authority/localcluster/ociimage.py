"""Write OCI image archives (``oci-layout`` + ``index.json`` + blobs, tarred) without a daemon.

An image here is one or more layers, each a reproducible gzip'd tar of a folder (sorted entries,
mtime 0, owner taken from the caller), plus an image config. The archive is what
``ctr images import`` and ``crane`` read; no registry and no Docker are involved. Build tooling
only: the operator never imports this.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import pathlib
import stat
import tarfile
from typing import Any

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclasses.dataclass(frozen=True)
class Layer:
    blob: bytes
    """The gzip'd tar."""
    diff_id: str
    """sha256 of the uncompressed tar (the config's ``rootfs.diff_ids``)."""


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_from_dir(
    folder: pathlib.Path,
    *,
    owner: tuple[int, int] = (0, 0),
    owners: dict[str, tuple[int, int]] | None = None,
) -> Layer:
    """A layer holding everything under ``folder`` (paths relative to it, symlinks kept).

    ``owners`` maps a relative path to its (uid, gid); everything else belongs to ``owner``.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix())
        for path in entries:
            rel = path.relative_to(folder).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid, info.gid = (owners or {}).get(rel, owner)
            info.uname = info.gname = ""
            info.mtime = 0
            info.pax_headers = {}
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    data = raw.getvalue()
    blob = gzip.compress(data, compresslevel=6, mtime=0)
    return Layer(blob=blob, diff_id=_digest(data))


def layer_from_files(files: dict[str, tuple[bytes, int]]) -> Layer:
    """A layer of regular files: ``{"path/in/image": (content, mode)}`` (owned by root)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            content, mode = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = stat.S_IMODE(mode)
            tar.addfile(info, io.BytesIO(content))
    data = raw.getvalue()
    return Layer(blob=gzip.compress(data, compresslevel=6, mtime=0), diff_id=_digest(data))


def write_archive(
    out: pathlib.Path,
    reference: str,
    layers: list[Layer],
    config: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
) -> str:
    """Write the OCI archive of one linux/amd64 image named ``reference``; returns its digest."""
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {**config, "Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": "agent-authority hack/image"} for _ in layers],
    }
    config_blob = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": _digest(config_blob),
            "size": len(config_blob),
        },
        "layers": [
            {"mediaType": MEDIA_LAYER, "digest": _digest(layer.blob), "size": len(layer.blob)}
            for layer in layers
        ],
    }
    manifest_blob = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": _digest(manifest_blob),
                "size": len(manifest_blob),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": reference,
                    "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    blobs = [config_blob, manifest_blob, *[layer.blob for layer in layers]]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, mode="w") as tar:
        _add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        seen = set()
        for blob in blobs:
            digest = _digest(blob).split(":", 1)[1]
            if digest not in seen:
                seen.add(digest)
                _add(tar, f"blobs/sha256/{digest}", blob)
    os.replace(partial, out)
    return _digest(manifest_blob)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
