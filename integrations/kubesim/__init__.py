"""kubesim: a stateful simulated Kubernetes API server for runbook tests, demos and benchmarks.

Real REST paths and JSON over HTTP on 127.0.0.1, so the official ``kubernetes`` client and
``kubectl`` both work against it and see the same state::

    sim = SimulatedCluster(objects=load_scenario("runbooks/scenarios/kubesim-basic.yaml"))
    with sim:
        sim.write_kubeconfig("/tmp/kubeconfig")          # kubectl --kubeconfig /tmp/kubeconfig get nodes
        core = kubernetes.client.CoreV1Api(sim.api_client())
        sim.faults.add(path=r"/api/v1/nodes$", status=429, retry_after=2, times=1)

What is simulated is the API server itself (validation, resourceVersions, watch, patch flavours,
deletion/eviction rules, RBAC) plus minimal controllers that react only to API writes made after
loading (controllers.py, workloads.py): the loaded state is served exactly as written.
Use ``SimulatedCluster(..., tls=True)`` when kubectl must send bearer tokens (RBAC): client-go
does not send them over plain HTTP.
"""

from .cluster import SimulatedCluster
from .errors import ApiError
from .faults import FaultRule, Faults
from .generator import generate_cluster
from .scenario import ScenarioError, load_scenario, parse_scenario

__all__ = [
    "ApiError",
    "FaultRule",
    "Faults",
    "ScenarioError",
    "SimulatedCluster",
    "generate_cluster",
    "load_scenario",
    "parse_scenario",
]
