"""``python -m agent_authority.localcluster up|down|env|build`` (wrapped by ``hack/controlplane``).

up      start a detached control plane named "dev" and print its environment
down    stop it and remove its folder
env     print `export KUBECONFIG=...` for it
build   only obtain/build the binaries (warms the cache)
"""

from __future__ import annotations

import argparse
import json
import sys

from agent_authority.localcluster import assets, cluster

NAME = "dev"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/controlplane",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "env", "build"])
    parser.add_argument("--name", default=NAME, help="name of the control plane (default: dev)")
    parser.add_argument("--apiserver-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--audit-url",
        default="https://127.0.0.1:9444/audit",
        help="where the apiserver posts audit events (the operator's /audit endpoint)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(json.dumps({k: str(v) for k, v in vars(assets.find_or_build()).items()}))
        elif args.command == "up":
            local = cluster.LocalCluster(
                cluster.Options(
                    apiserver_port=args.apiserver_port,
                    name=args.name,
                    audit_url=args.audit_url,
                    detach=True,
                )
            ).start()
            print(
                f"# control plane up in {local.startup_seconds:.1f} s at {local.url}",
                file=sys.stderr,
            )
            print(f"export KUBECONFIG={local.kubeconfig}")
        elif args.command == "down":
            stopped = cluster.stop_detached(args.name)
            print(
                "stopped" if stopped else f"no control plane named {args.name!r} is running",
                file=sys.stderr,
            )
        else:
            state = cluster.run_root() / args.name / "state.json"
            if not state.exists():
                print(f"no control plane named {args.name!r} is running; run `up`", file=sys.stderr)
                return 1
            print(f"export KUBECONFIG={json.loads(state.read_text())['kubeconfig']}")
    except (assets.AssetError, cluster.ClusterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
