"""``python -m agent_authority.localcluster.nodecli up|down|env|build|import`` (``hack/cluster``).

up       start a detached control plane + node named "node" and print its environment
down     tear the node down (pods, mounts, network, iptables) and stop the control plane
env      print `export KUBECONFIG=...` for it
build    only obtain/build the node binaries and the pause image (warms the cache)
import   import OCI archives into the running node's containerd
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from agent_authority.localcluster import assets, cluster, node, nodeassets, nodeimages

NAME = "node"


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    local = cluster.LocalCluster(
        node.cluster_options(name=args.name, detach=True, audit_url=args.audit_url)
    ).start()
    try:
        worker = node.LocalNode(local, images=[pathlib.Path(i) for i in args.image]).start()
    except BaseException:
        local.stop()
        raise
    print(
        f"# control plane in {local.startup_seconds:.1f} s, node {node.NODE_NAME} Ready in "
        f"{worker.startup_seconds:.1f} s (total {time.monotonic() - started:.1f} s)",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={local.kubeconfig}")
    return 0


def _down(args: argparse.Namespace) -> int:
    folder = cluster.run_root() / args.name
    node.teardown(folder / "node")
    stopped = cluster.stop_detached(args.name)
    left = node.leftovers()
    print("stopped" if stopped else f"no cluster named {args.name!r} was running", file=sys.stderr)
    if left:
        print("left behind on this host:\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "env", "build", "import"])
    parser.add_argument("archives", nargs="*", help="OCI archives (import)")
    parser.add_argument("--name", default=NAME)
    parser.add_argument(
        "--image", action="append", default=[], help="OCI archive to import at `up` (repeatable)"
    )
    parser.add_argument("--audit-url", default="https://127.0.0.1:9444/audit")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            binaries = nodeassets.find_or_build()
            print(json.dumps({k: str(v) for k, v in vars(binaries).items()}))
            print(nodeimages.pause_archive())
            print(nodeassets.helm())
            return 0
        if args.command == "up":
            return _up(args)
        if args.command == "down":
            return _down(args)
        state = cluster.run_root() / args.name / "state.json"
        if not state.exists():
            print(f"no cluster named {args.name!r} is running; run `up`", file=sys.stderr)
            return 1
        if args.command == "import":
            local = cluster.LocalCluster(cluster.Options(name=args.name))
            local.folder = cluster.run_root() / args.name
            worker = node.LocalNode(local)
            worker.binaries = nodeassets.find_or_build()
            for archive in args.archives:
                worker.import_image(pathlib.Path(archive))
            return 0
        print(f"export KUBECONFIG={json.loads(state.read_text())['kubeconfig']}")
    except (assets.AssetError, cluster.ClusterError, node.NodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
