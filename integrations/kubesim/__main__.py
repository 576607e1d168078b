"""Run a simulated cluster from the command line, e.g. for poking at it with kubectl:

python -m integrations.kubesim runbooks/scenarios/kubesim-basic.yaml --kubeconfig /tmp/kubesim.yaml
kubectl --kubeconfig /tmp/kubesim.yaml get nodes
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path

from .cluster import SimulatedCluster
from .generator import generate_cluster
from .scenario import ScenarioError, load_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.kubesim", description=__doc__.split("\n")[0]
    )
    parser.add_argument("scenarios", nargs="*", type=Path, help="multi-document YAML scenario files")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig", type=Path, default=Path("kubesim.kubeconfig"))
    parser.add_argument("--generate-nodes", type=int, default=0, help="add a synthetic cluster of N nodes")
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--rbac", action="store_true", help="enforce RBAC (token admin-token is admin)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS (needed for kubectl to send tokens)")
    parser.add_argument("--for", dest="duration", type=float, default=0, help="stop after N seconds")
    args = parser.parse_args(argv)

    objects: list[dict] = []
    started = time.perf_counter()
    try:
        for path in args.scenarios:
            objects.extend(load_scenario(path))
        if args.generate_nodes:
            objects.extend(generate_cluster(nodes=args.generate_nodes, pods_per_node=args.pods_per_node))
        sim = SimulatedCluster(objects=objects, port=args.port, rbac=args.rbac, tls=args.tls)
    except (ScenarioError, OSError) as exc:
        print(f"kubesim: {exc}", file=sys.stderr)
        return 2
    with sim:
        sim.write_kubeconfig(args.kubeconfig)
        took = time.perf_counter() - started
        print(f"kubesim serving {len(objects)} objects at {sim.url} (loaded in {took:.2f}s)")
        print(f"kubeconfig: {args.kubeconfig}")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait(args.duration or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
